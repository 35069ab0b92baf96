"""Dual-attention ResUNet task: SAR flood segmentation with the masked Focal-Tversky loss."""

from __future__ import annotations

from floodlab.models import build_resunet
from floodlab.specs import ResUNetSpec
from floodlab.tasks.registry import register_family
from floodlab.tasks.segmentation import SegmentationTask


@register_family(ResUNetSpec, model=build_resunet)
class ResUNetTask(SegmentationTask):
    """Dual-attention residual U-Net on engineered SAR bands (VV, ratio, magnitude).

    Loss: masked Focal-Tversky (1 - TI) ** gamma with TI = TP / (TP + alpha FP + beta FN),
    alpha = `loss.seg.tversky_alpha` (0.3, false positives), beta = `loss.seg.tversky_beta`
    (0.7, false negatives), gamma = `loss.seg.tversky_gamma`, plus any other non-zero
    `loss.seg` term (Dice, BCE, focal, boundary). Invalid pixels (label -1) are excluded
    from the loss, its gradients and every metric. Metrics and panels: `SegmentationTask`.
    """
