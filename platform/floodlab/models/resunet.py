"""Dual-attention residual U-Net (SE channel + spatial attention) for SAR flood segmentation."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floodlab.models.blocks import (
    ResidualBlock,
    SpatialAttention,
    crop_to,
    init_weights,
    pad_to_multiple,
)
from floodlab.specs.model import ResUNetSpec


class ResUNetDecoderBlock(nn.Module):
    """2x bilinear upsampling, concat the skip, residual block with SE, spatial attention.

    Args:
        in_ch: channels of the deeper map.
        skip_ch: channels of the encoder skip.
        out_ch: output channels.
        se_reduction: SE reduction of the residual block.
        spatial_attention: apply spatial attention to the block's output.
    """

    def __init__(
        self, in_ch: int, skip_ch: int, out_ch: int, se_reduction: int, spatial_attention: bool
    ):
        super().__init__()
        self.block = ResidualBlock(in_ch + skip_ch, out_ch, se_reduction=se_reduction)
        self.attention: nn.Module = SpatialAttention() if spatial_attention else nn.Identity()

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Merge ``x`` (B, in_ch, h, w) with ``skip`` (B, skip_ch, 2h, 2w)."""
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.attention(self.block(torch.cat([x, skip], dim=1)))


class ResUNet(nn.Module):
    """Residual U-Net with squeeze-and-excitation and spatial attention (one-channel output).

    Encoder: level 0 is a residual block at full resolution (``widths[0]``), each further
    level a stride-2 residual block followed by a plain one (``widths[i]``); the deepest
    level is the bridge (with optional dropout). Every residual block carries SE channel
    attention. The decoder mirrors the encoder: bilinear 2x upsampling, concatenation of
    the skip, a residual SE block and a CBAM-style spatial-attention gate. A 1x1 conv gives
    one logit per pixel.

    The output is *logits*: the sigmoid is applied by the losses (masked Focal-Tversky) and
    by prediction, which keeps the loss numerically stable under mixed precision.

    Args:
        in_channels: input bands (VV, ratio, magnitude).
        widths: encoder widths per level, e.g. (64, 128, 256, 512).
        se_reduction: SE channel reduction.
        spatial_attention: spatial attention after each decoder block.
        dropout: dropout probability at the bridge.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] | list[int] = (64, 128, 256, 512),
        se_reduction: int = 16,
        spatial_attention: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        widths = list(widths)
        self.multiple = 2 ** (len(widths) - 1)
        self.encoder = nn.ModuleList(
            [ResidualBlock(in_channels, widths[0], se_reduction=se_reduction)]
        )
        for prev, width in itertools.pairwise(widths):
            self.encoder.append(
                nn.Sequential(
                    ResidualBlock(prev, width, stride=2, se_reduction=se_reduction),
                    ResidualBlock(width, width, se_reduction=se_reduction),
                )
            )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.decoder = nn.ModuleList(
            ResUNetDecoderBlock(deep, skip, skip, se_reduction, spatial_attention)
            for deep, skip in zip(widths[:0:-1], widths[-2::-1], strict=True)
        )
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> flood logits (B, 1, H, W); any H, W (padded internally)."""
        x, size = pad_to_multiple(x, self.multiple)
        skips: list[Tensor] = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        x = self.dropout(skips.pop())  # (B, widths[-1], H / 2^(n-1), W / 2^(n-1))
        for block in self.decoder:
            x = block(x, skips.pop())
        return crop_to(self.head(x), size)


def build_resunet(spec: ResUNetSpec) -> ResUNet:
    """Build a `ResUNet` from its spec."""
    return ResUNet(
        in_channels=spec.in_channels,
        widths=spec.widths,
        se_reduction=spec.se_reduction,
        spatial_attention=spec.spatial_attention,
        dropout=spec.dropout,
    )
