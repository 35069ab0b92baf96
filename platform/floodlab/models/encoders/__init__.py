"""CNN encoders written here (no downloads): MobileNetV2 and EfficientNet."""

from floodlab.models.encoders.efficientnet import EfficientNetEncoder, MBConv
from floodlab.models.encoders.mobilenetv2 import InvertedResidual, MobileNetV2Encoder

__all__ = ["EfficientNetEncoder", "InvertedResidual", "MBConv", "MobileNetV2Encoder"]
