"""Metric keys, defined once: tasks report them bare, the loop prefixes the split."""

from __future__ import annotations

# -- the epoch record (metrics.jsonl, Ray reports, TensorBoard) ---------------------------
EPOCH = "epoch"  # last completed epoch, 1-based
GLOBAL_STEP = "global_step"  # optimisation steps so far
TIME = "time"  # s: the epoch's training + validation
TIMESTAMP = "timestamp"  # unix s when the epoch ended
LR = "lr"  # learning rate of the first optimiser (others: lr/<name>)
GRAD_NORM = "grad_norm"  # mean gradient norm before clipping

# -- losses -------------------------------------------------------------------------------
LOSS = "loss"

# -- segmentation (from the accumulated confusion matrix of the positive class) ---------
IOU = "iou"  # IoU of the flood/cloud class: TP / (TP + FP + FN)
MIOU = "miou"  # mean of the IoU of both classes (water and dry / cloud and clear)
F1 = "f1"  # F1 = Dice = 2 TP / (2 TP + FP + FN)
PRECISION = "precision"  # TP / (TP + FP)
RECALL = "recall"  # TP / (TP + FN)
ACCURACY = "accuracy"  # (TP + TN) / valid pixels
TP, FP, FN, TN = "tp", "fp", "fn", "tn"  # confusion-matrix counts (valid pixels)
COUNTS: tuple[str, ...] = (TP, FP, FN, TN)  # their order wherever counts are stacked
VALID_PIXELS = "valid_pixels"
SEGMENTATION_KEYS: tuple[str, ...] = (IOU, MIOU, F1, PRECISION, RECALL, ACCURACY)
# Evaluation over a set of images (floodlab.metrics.bootstrap): the IoU of each image, then
# their mean (images with neither true nor predicted positives left out).
MEAN_IMAGE_IOU = "mean_image_iou"

# -- reconstruction -----------------------------------------------------------------------
PSNR = "psnr"  # dB, per image then averaged, data range 1
SSIM = "ssim"  # mean structural similarity (11x11 Gaussian window)
SAM = "sam"  # spectral angle mapper, degrees
RMSE = "rmse"  # root-mean-square error over every band
NDVI_ERROR = "ndvi_error"  # mean |NDVI(pred) - NDVI(target)| (needs B8 and B4)
RECONSTRUCTION_KEYS: tuple[str, ...] = (PSNR, SSIM, SAM, RMSE)

# -- prefixes -----------------------------------------------------------------------------
TRAIN, VAL, TEST = "train", "val", "test"
TRAIN_STEP = "train_step"  # TensorBoard scalars of single optimisation steps
WITH_OPTICAL = "with_optical"  # FLoRA evaluated with its optical prior (vs SAR alone)


def band_rmse(band: str) -> str:
    """Key of the RMSE of one band, e.g. ``rmse/B4``."""
    return f"{RMSE}/{band}"


def with_optical(key: str) -> str:
    """Key of a metric measured with FLoRA's optical prior, e.g. ``with_optical/iou``."""
    return f"{WITH_OPTICAL}/{key}"


def prefixed(split: str, key: str) -> str:
    """``split/key``, e.g. ``prefixed("val", "iou") == "val/iou"``."""
    return f"{split}/{key}"


def train(key: str) -> str:
    """``train/<key>``."""
    return prefixed(TRAIN, key)


def val(key: str) -> str:
    """``val/<key>``."""
    return prefixed(VAL, key)


def test(key: str) -> str:
    """``test/<key>``."""
    return prefixed(TEST, key)


def train_step(key: str) -> str:
    """``train_step/<key>``."""
    return prefixed(TRAIN_STEP, key)


def loss_component(name: str) -> str:
    """Key of one weighted loss term, e.g. ``loss/dice`` (``loss`` alone is the total)."""
    return LOSS if name == LOSS else f"{LOSS}/{name}"


def lr(optimizer: str | None = None) -> str:
    """Key of a learning rate: ``lr`` for the first optimiser, ``lr/<name>`` for the others."""
    return LR if optimizer is None else f"{LR}/{optimizer}"


def grad_norm(optimizer: str) -> str:
    """Key of an optimiser's gradient norm: ``grad_norm`` for "main", else ``grad_norm/<name>``."""
    return GRAD_NORM if optimizer == "main" else f"{GRAD_NORM}/{optimizer}"
