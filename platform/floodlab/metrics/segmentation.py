"""Masked binary segmentation metrics from a confusion matrix, accumulated and DDP-reduced.

Class 1 is the positive class (flood water, or cloud); class 0 the background. Only valid
pixels are counted. Ratios that are undefined (0 / 0, e.g. IoU of a chip with no water in
the label nor the prediction) are NaN, so averages over images can skip them
(`pandas.DataFrame.mean` does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from floodlab.losses.masking import as_bhw, valid_mask
from floodlab.metrics import keys


def _binarise(
    prob: Tensor, target: Tensor, valid: Tensor | None, threshold: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(B, H, W) bool prediction, bool target and bool validity."""
    pred = as_bhw(prob) > threshold
    mask = valid_mask(valid, pred)
    truth = as_bhw(target).to(pred.device) > 0.5
    return pred, truth, mask


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, float("nan")))


def scores_from_counts(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> dict[str, Tensor]:
    """IoU, mean IoU, F1, precision, recall and accuracy from confusion counts.

    Args:
        tp, fp, fn, tn: counts, scalars or (B,) tensors (per image).

    Returns:
        Float64 tensors of the same shape, keyed by `floodlab.metrics.keys`.
    """
    iou = _ratio(tp, tp + fp + fn)
    iou_background = _ratio(tn, tn + fn + fp)
    return {
        keys.IOU: iou,
        keys.MIOU: torch.stack([iou, iou_background]).nanmean(dim=0),
        keys.F1: _ratio(2 * tp, 2 * tp + fp + fn),
        keys.PRECISION: _ratio(tp, tp + fp),
        keys.RECALL: _ratio(tp, tp + fn),
        keys.ACCURACY: _ratio(tp + tn, tp + tn + fp + fn),
    }


def confusion_counts(
    pred: Tensor | np.ndarray,
    truth: Tensor | np.ndarray,
    valid: Tensor | np.ndarray,
    dims: tuple[int, ...] | None = None,
) -> Tensor:
    """Confusion counts of boolean maps over the valid pixels.

    Args:
        pred: predicted positive, any shape (e.g. (H, W) or (B, H, W)).
        truth: true positive, the same shape.
        valid: pixels to count, the same shape.
        dims: the dimensions to sum over; default all.

    Returns:
        int64 counts stacked last in the order `keys.COUNTS` (tp, fp, fn, tn): shape (4,)
        by default, (B, 4) for (B, H, W) maps with ``dims=(1, 2)``.
    """
    p, t, v = (torch.as_tensor(x).bool() for x in (pred, truth, valid))
    dims = dims if dims is not None else tuple(range(p.ndim))
    counts = [(p & t & v), (p & ~t & v), (~p & t & v), (~p & ~t & v)]
    return torch.stack([c.sum(dims) for c in counts], dim=-1).long()


def count_scores(counts: Sequence[int] | np.ndarray | Tensor) -> dict[str, float]:
    """`scores_from_counts` of one (tp, fp, fn, tn) as floats (NaN where undefined)."""
    tp, fp, fn, tn = torch.as_tensor(counts, dtype=torch.float64).unbind()
    return {k: float(v) for k, v in scores_from_counts(tp, fp, fn, tn).items()}


def per_image_segmentation(
    prob: Tensor, target: Tensor, valid: Tensor | None = None, threshold: float = 0.5
) -> dict[str, Tensor]:
    """Per-sample segmentation metrics (for evaluation CSVs).

    Args:
        prob: (B, 1, H, W) or (B, H, W) probabilities in [0, 1].
        target: (B, H, W) {0, 1} labels.
        valid: optional (B, H, W) bool; False pixels are excluded.
        threshold: probability above which a pixel is predicted positive.

    Returns:
        (B,) tensors: the keys of `scores_from_counts` plus tp, fp, fn, tn and valid_pixels.
    """
    pred, truth, mask = _binarise(prob, target, valid, threshold)
    counts = confusion_counts(pred, truth, mask, dims=(1, 2)).unbind(-1)  # 4 x (B,)
    out = scores_from_counts(*counts)
    out.update(dict(zip(keys.COUNTS, counts, strict=True)))
    out[keys.VALID_PIXELS] = mask.sum((1, 2))
    return out


class SegmentationMetrics(Metric):
    """Accumulated 2x2 confusion matrix over valid pixels; sum-reduced across DDP ranks.

    ``confmat[i, j]`` counts pixels of true class i predicted as class j (0 = background,
    1 = water/cloud).

    Args:
        threshold: probability above which a pixel is predicted positive.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    confmat: Tensor

    def __init__(self, threshold: float = 0.5, **kwargs: object):
        super().__init__(**kwargs)
        self.threshold = threshold
        self.add_state("confmat", default=torch.zeros(2, 2, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, prob: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add a batch.

        Args:
            prob: (B, 1, H, W) or (B, H, W) probabilities in [0, 1].
            target: (B, H, W) {0, 1} labels.
            valid: optional (B, H, W) bool.
        """
        pred, truth, mask = _binarise(prob.detach(), target, valid, self.threshold)
        index = truth[mask].long() * 2 + pred[mask].long()  # 0=TN 1=FP 2=FN 3=TP
        self.confmat += torch.bincount(index, minlength=4).view(2, 2).to(self.confmat)

    def compute(self) -> dict[str, Tensor]:
        """Scalar IoU, mean IoU, F1, precision, recall and accuracy (float64)."""
        tn, fp, fn, tp = self.confmat.flatten()
        return scores_from_counts(tp, fp, fn, tn)

    def confusion_matrix(self) -> Tensor:
        """The (2, 2) int64 confusion matrix, rows = truth, columns = prediction.

        Summed across DDP ranks when a process group is initialised (every rank must call).
        """
        with self.sync_context():
            return self.confmat.clone()
