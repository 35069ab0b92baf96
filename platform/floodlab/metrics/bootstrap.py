"""Scores of a set of images: mean per-image IoU, pooled scores, bootstrap intervals.

Every score comes from confusion counts (tp, fp, fn, tn) over valid pixels through the one
scorer, `floodlab.metrics.segmentation.scores_from_counts`:

* **mean per-image IoU** (``mean_image_iou``, the OMBRIA paper's figure): the positive-class
  IoU ``TP / (TP + FP + FN)`` of each image, then the mean over images. An image whose
  valid pixels hold no positive in the label nor in the prediction has an undefined IoU
  (0 / 0) and is left out of the mean (``images_in_mean`` counts the images that entered);
  an image with positives in only one of the two scores 0. Images without valid pixels
  never count.
* **pooled** scores: IoU, two-class mIoU, F1, precision, recall and accuracy of the counts
  summed over every valid pixel of every image (`DEFINITIONS` says each formula).
* **95% bootstrap intervals over images**: the images are resampled with replacement
  (`resamples` times, seeded), and each score is recomputed on every resample from the
  resampled images' counts (pooled scores from their summed counts, the mean per-image IoU
  from their IoUs); the interval is the 2.5th to 97.5th percentile of those values. All
  predictors share the same resamples, so their intervals are paired.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch

from floodlab.metrics import keys
from floodlab.metrics.segmentation import scores_from_counts

IMAGES_IN_MEAN = "images_in_mean"
# The scores an evaluation reports for a set of images, each with a bootstrap interval.
SUMMARY_KEYS: tuple[str, ...] = (
    keys.MEAN_IMAGE_IOU,
    keys.IOU,
    keys.MIOU,
    keys.F1,
    keys.PRECISION,
    keys.RECALL,
    keys.ACCURACY,
)
DEFINITIONS: dict[str, str] = {
    keys.MEAN_IMAGE_IOU: (
        "mean per-image flood IoU: TP/(TP+FP+FN) of each image over its valid pixels, "
        "averaged over images; an image with no flood in its label nor its prediction (0/0) "
        "is left out (images_in_mean counts the rest), one with flood in only one of them "
        "scores 0"
    ),
    keys.IOU: "pooled flood IoU: TP/(TP+FP+FN) of the counts summed over all images",
    keys.MIOU: (
        "two-class mIoU: mean of the pooled flood IoU and the pooled dry IoU TN/(TN+FN+FP)"
    ),
    keys.F1: "pooled flood F1 (Dice): 2TP/(2TP+FP+FN) of the summed counts",
    keys.PRECISION: "pooled flood precision: TP/(TP+FP) of the summed counts",
    keys.RECALL: "pooled flood recall: TP/(TP+FN) of the summed counts",
    keys.ACCURACY: "pooled pixel accuracy: (TP+TN)/(TP+FP+FN+TN) of the summed counts",
}


def _scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """`scores_from_counts` of (N, 4) counts: score -> (N,) float64 (NaN where undefined)."""
    c = torch.as_tensor(np.asarray(counts, dtype=np.int64).reshape(-1, 4))
    return {k: v.numpy() for k, v in scores_from_counts(*c.unbind(-1)).items()}


def per_image_iou(counts: np.ndarray) -> np.ndarray:
    """(N, 4) per-image counts (tp, fp, fn, tn) -> (N,) IoU, NaN where 0 / 0."""
    return _scores(counts)[keys.IOU]


def summarise(counts: np.ndarray) -> dict[str, float]:
    """Point estimates of `SUMMARY_KEYS` for a set of images.

    Args:
        counts: (N, 4) int per-image confusion counts in the order `keys.COUNTS`.

    Returns:
        The pooled scores of the summed counts, ``mean_image_iou`` and ``images_in_mean``
        (see the module docstring); NaN where undefined (e.g. no image).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 4)
    pooled = {k: float(v[0]) for k, v in _scores(counts.sum(axis=0)).items()}
    ious = per_image_iou(counts)
    finite = np.isfinite(ious)
    pooled[keys.MEAN_IMAGE_IOU] = float(ious[finite].mean()) if finite.any() else float("nan")
    pooled[IMAGES_IN_MEAN] = int(finite.sum())
    return pooled


def resample_weights(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """How often each image is drawn in each bootstrap resample.

    Args:
        n_images: images in the set (N).
        resamples: bootstrap resamples (R).
        seed: seed of the generator; the same seed gives the same resamples.

    Returns:
        (R, N) int64: row r counts the draws of each image in resample r (each row sums to N).
    """
    if n_images == 0:
        return np.zeros((resamples, 0), dtype=np.int64)
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=resamples)


def bootstrap_intervals(
    counts: Mapping[str, np.ndarray],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, list[float]]]:
    """Percentile bootstrap intervals over images of every score in `SUMMARY_KEYS`.

    Args:
        counts: predictor -> (N, 4) per-image counts; every predictor scores the same N
            images, in the same order, so one set of resamples serves them all.
        resamples: bootstrap resamples.
        seed: seed of the resampling.
        level: coverage of the interval (0.95: the 2.5th and 97.5th percentiles).

    Returns:
        predictor -> score -> [low, high]; NaN bounds where the score is undefined in
        every resample (no image at all, or e.g. no flood anywhere).
    """
    if resamples < 1:
        raise ValueError(f"`resamples >= 1` must hold, but got (resamples={resamples})")
    if not 0.0 < level < 1.0:
        raise ValueError(f"`0 < level < 1` must hold, but got (level={level})")
    sizes = {name: np.asarray(c).reshape(-1, 4).shape[0] for name, c in counts.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"every predictor must score the same images, but got {sizes}")
    n = next(iter(sizes.values()), 0)
    weights = resample_weights(n, resamples, seed)  # (R, N)
    tails = [50.0 * (1.0 - level), 100.0 - 50.0 * (1.0 - level)]
    out: dict[str, dict[str, list[float]]] = {}
    for name, c in counts.items():
        values = _resampled(weights, np.asarray(c, dtype=np.int64).reshape(-1, 4))
        out[name] = {k: _percentiles(values[k], tails) for k in SUMMARY_KEYS}
    return out


def _resampled(weights: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every score on each resample: (R, N) draws and (N, 4) counts -> score -> (R,)."""
    values = _scores(weights @ counts)  # pooled scores of each resample's summed counts
    ious = per_image_iou(counts)
    finite = np.isfinite(ious)
    entered = weights @ finite.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        values[keys.MEAN_IMAGE_IOU] = (weights @ np.where(finite, ious, 0.0)) / entered
    return values


DIFFERENCE_KEYS: tuple[str, ...] = (keys.MEAN_IMAGE_IOU, keys.IOU)


def paired_differences(
    counts: Mapping[str, np.ndarray],
    pairs: list[tuple[str, str]],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, object]]:
    """A minus B of `DIFFERENCE_KEYS` for each pair, with paired bootstrap intervals.

    Args:
        counts: predictor -> (N, 4) per-image counts, the same N images for every predictor.
        pairs: (A, B) predictor names; pairs naming an absent predictor are skipped.
        resamples: bootstrap resamples (the same seed gives `bootstrap_intervals`' ones).
        seed: seed of the resampling.
        level: coverage of the intervals.

    Returns:
        ``"A - B"`` -> {score: {"value": A - B, "ci95": [low, high]}, ...,
        "images_better": share of the images with both IoUs defined where A's is higher}.
    """
    first = next(iter(counts.values()), np.zeros((0, 4)))
    n = np.asarray(first).reshape(-1, 4).shape[0]
    weights = resample_weights(n, resamples, seed)
    tails = [50.0 * (1.0 - level), 100.0 - 50.0 * (1.0 - level)]
    out: dict[str, dict[str, object]] = {}
    for a, b in pairs:
        if a not in counts or b not in counts:
            continue
        ca, cb = (np.asarray(counts[x], dtype=np.int64).reshape(-1, 4) for x in (a, b))
        point_a, point_b = summarise(ca), summarise(cb)
        res_a, res_b = _resampled(weights, ca), _resampled(weights, cb)
        entry: dict[str, object] = {
            k: {
                "value": point_a[k] - point_b[k],
                "ci95": _percentiles(res_a[k] - res_b[k], tails),
            }
            for k in DIFFERENCE_KEYS
        }
        ia, ib = per_image_iou(ca), per_image_iou(cb)
        both = np.isfinite(ia) & np.isfinite(ib)
        entry["images_better"] = float((ia[both] > ib[both]).mean()) if both.any() else float("nan")
        out[f"{a} - {b}"] = entry
    return out


def _percentiles(values: np.ndarray, tails: list[float]) -> list[float]:
    """The two percentiles of the finite values (NaN, NaN when there are none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [float("nan"), float("nan")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.percentile(finite, tails)
    return [float(low), float(high)]
