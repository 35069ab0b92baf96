"""Masked segmentation and reconstruction metrics, accumulated over batches and DDP ranks."""

from floodlab.metrics import keys
from floodlab.metrics.means import LossMeans
from floodlab.metrics.reconstruction import ReconstructionMetrics, ndvi, spectral_angle
from floodlab.metrics.segmentation import (
    SegmentationMetrics,
    per_image_segmentation,
    scores_from_counts,
)

__all__ = [
    "LossMeans",
    "ReconstructionMetrics",
    "SegmentationMetrics",
    "keys",
    "ndvi",
    "per_image_segmentation",
    "scores_from_counts",
    "spectral_angle",
]
