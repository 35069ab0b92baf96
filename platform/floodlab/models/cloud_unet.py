"""Cloud-segmentation U-Net with an EfficientNet-B2 encoder (CloudSEN12)."""

from __future__ import annotations

from floodlab.models.blocks import init_weights
from floodlab.models.encoders.efficientnet import EfficientNetEncoder
from floodlab.models.unet import EncoderUNet
from floodlab.models.weights import load_encoder_weights
from floodlab.specs.model import CloudUNetSpec


class CloudUNet(EncoderUNet):
    """U-Net decoder on an EfficientNet encoder (B2 by default), randomly initialised.

    The encoder's features at strides 2, 4, 8, 16, 32 (16, 24, 48, 120, 352 channels for
    B2) feed five decoder blocks and a 3x3 head (`EncoderUNet`).

    Args:
        in_channels: input channels (RGB).
        num_classes: output logits per pixel.
        decoder_widths: five decoder widths, deepest first.
        encoder: EfficientNet variant.
        encoder_weights: optional local encoder state_dict (``features.*`` keys).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        decoder_widths: tuple[int, ...] | list[int] = (256, 128, 64, 32, 16),
        encoder: str = "b2",
        encoder_weights: str | None = None,
    ):
        super().__init__(
            EfficientNetEncoder(encoder, in_channels), list(decoder_widths), num_classes
        )
        # The encoder initialises itself; only the decoder and head need the default init.
        self.decoder.apply(init_weights)
        self.head.apply(init_weights)
        if encoder_weights:
            load_encoder_weights(self.encoder, encoder_weights)


def build_cloud_unet(spec: CloudUNetSpec) -> CloudUNet:
    """Build a `CloudUNet` (EfficientNet-B2 encoder) from its spec."""
    return CloudUNet(
        in_channels=spec.in_channels,
        num_classes=spec.num_classes,
        decoder_widths=spec.decoder_widths,
        encoder="b2",
        encoder_weights=spec.encoder_weights,
    )
