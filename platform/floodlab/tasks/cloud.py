"""Cloud-segmentation U-Net task (CloudSEN12): 0.25 Focal + 0.75 Dice, IoU / F1 / accuracy."""

from __future__ import annotations

from floodlab.models import build_cloud_unet
from floodlab.specs import CloudUNetSpec
from floodlab.tasks.registry import register_family
from floodlab.tasks.segmentation import SegmentationTask


@register_family(CloudUNetSpec, model=build_cloud_unet)
class CloudTask(SegmentationTask):
    """U-Net with an EfficientNet-B2 encoder segmenting cloud (thin | thick) from RGB.

    Loss: `loss.seg.focal` x focal (alpha = `loss.seg.focal_alpha`, gamma =
    `loss.seg.focal_gamma`) + `loss.seg.dice` x soft Dice; the family defaults are 0.25 and
    0.75. Metrics: IoU, F1 and pixel accuracy of the cloud class (plus mIoU, precision,
    recall). Panels show the RGB input in true colour.
    """
