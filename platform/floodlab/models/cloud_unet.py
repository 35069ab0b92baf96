"""Cloud-segmentation U-Net with an EfficientNet-B2 encoder (CloudSEN12)."""

from __future__ import annotations

from torch import Tensor, nn

from floodlab.models.blocks import UNetDecoderBlock, crop_to, init_weights, pad_to_multiple
from floodlab.models.encoders.efficientnet import EfficientNetEncoder
from floodlab.models.weights import load_weights
from floodlab.specs.model import CloudUNetSpec


class CloudUNet(nn.Module):
    """U-Net decoder on an EfficientNet encoder (B2 by default), randomly initialised.

    The encoder's features at strides 2, 4, 8, 16, 32 (16, 24, 48, 120, 352 channels for
    B2) feed five decoder blocks (nearest 2x upsampling, skip concatenation, two 3x3
    ConvNormAct; the last block has no skip and returns to full resolution) and a 3x3 head.
    Inputs of any size are replicate-padded to a multiple of 32 and the logits cropped back.

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
        super().__init__()
        decoder_widths = list(decoder_widths)
        if len(decoder_widths) != 5:
            raise ValueError(
                f"`len(decoder_widths) == 5` must hold, but got (decoder_widths={decoder_widths})"
            )
        self.encoder = EfficientNetEncoder(encoder, in_channels)
        enc = self.encoder.out_channels
        skips = [*enc[-2::-1], 0]  # 120, 48, 24, 16, none
        ins = [enc[-1], *decoder_widths[:-1]]
        self.decoder = nn.ModuleList(
            UNetDecoderBlock(i, s, o) for i, s, o in zip(ins, skips, decoder_widths, strict=True)
        )
        self.head = nn.Conv2d(decoder_widths[-1], num_classes, 3, padding=1)
        # The encoder initialises itself; only the decoder and head need the default init.
        self.decoder.apply(init_weights)
        self.head.apply(init_weights)
        if encoder_weights:
            load_weights(
                self.encoder,
                encoder_weights,
                field="model.encoder_weights",
                input_conv=EfficientNetEncoder.INPUT_CONV,
            )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> logits (B, num_classes, H, W); any H, W."""
        x, size = pad_to_multiple(x, 32)
        feats = self.encoder(x)
        y = feats.pop()
        for block in self.decoder:
            y = block(y, feats.pop() if feats else None)
        return crop_to(self.head(y), size)


def build_cloud_unet(spec: CloudUNetSpec) -> CloudUNet:
    """Build a `CloudUNet` (EfficientNet-B2 encoder) from its spec."""
    return CloudUNet(
        in_channels=spec.in_channels,
        num_classes=spec.num_classes,
        decoder_widths=spec.decoder_widths,
        encoder="b2",
        encoder_weights=spec.encoder_weights,
    )
