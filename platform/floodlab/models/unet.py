"""U-Net decoder on a five-stage encoder: the CloudSEN12 and SAR-KD U-Nets share it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from torch import Tensor, nn

from floodlab.models.blocks import UNetDecoderBlock, crop_to, pad_to_multiple


class EncoderUNet(nn.Module):
    """U-Net decoder and 3x3 head on an encoder returning five feature maps (strides 2..32).

    Five decoder blocks (nearest 2x upsampling, skip concatenation, two 3x3 ConvNormAct;
    the last block has no skip and returns to full resolution) as in
    segmentation_models.pytorch's ``Unet``. Inputs of any size are replicate-padded to a
    multiple of 32 and the logits cropped back.

    The subclass initialises the decoder and head (`init_weights`) and then loads its
    encoder weights, if any (`load_encoder_weights`).

    Args:
        encoder: the encoder, listing its five feature widths, shallow to deep, in
            ``out_channels``.
        decoder_widths: five decoder widths, deepest first.
        num_classes: output logits per pixel.
    """

    def __init__(self, encoder: nn.Module, decoder_widths: Sequence[int], num_classes: int):
        super().__init__()
        if len(decoder_widths) != 5:
            raise ValueError(
                f"`len(decoder_widths) == 5` must hold, but got (decoder_widths={decoder_widths})"
            )
        self.encoder = encoder
        enc = cast(list[int], encoder.out_channels)
        skips = [*enc[-2::-1], 0]  # four encoder skips, deepest first, then none
        ins = [enc[-1], *decoder_widths[:-1]]
        self.decoder = nn.ModuleList(
            UNetDecoderBlock(i, s, o) for i, s, o in zip(ins, skips, decoder_widths, strict=True)
        )
        self.head = nn.Conv2d(decoder_widths[-1], num_classes, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> logits (B, num_classes, H, W); any H, W."""
        x, size = pad_to_multiple(x, 32)
        feats = self.encoder(x)
        y = feats.pop()
        for block in self.decoder:
            y = block(y, feats.pop() if feats else None)
        return crop_to(self.head(y), size)
