"""FLoRA's SAR encoder: a residual CNN pyramid over VV/VH, one feature map per scale."""

from __future__ import annotations

from torch import Tensor, nn

from floodlab.models.blocks import ResidualBlock, init_weights


class PyramidEncoder(nn.Module):
    """Residual CNN returning one feature map per scale (scale 0 at full resolution).

    Scale 0: a residual block ``in_channels -> widths[0]``; each further scale ``i``: a
    stride-2 residual block ``widths[i-1] -> widths[i]``. Every scale then adds
    ``blocks_per_scale - 1`` residual blocks at its width.

    Args:
        in_channels: input channels.
        widths: channels per scale; scale ``i`` has resolution ``H / 2**i``.
        blocks_per_scale: residual blocks per scale (>= 1).
    """

    def __init__(self, in_channels: int, widths: list[int], blocks_per_scale: int = 2):
        super().__init__()
        self.widths = list(widths)
        self.stages = nn.ModuleList()
        prev = in_channels
        for i, width in enumerate(self.widths):
            blocks: list[nn.Module] = [ResidualBlock(prev, width, stride=1 if i == 0 else 2)]
            blocks += [ResidualBlock(width, width) for _ in range(blocks_per_scale - 1)]
            self.stages.append(nn.Sequential(*blocks))
            prev = width
        self.apply(init_weights)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, in_channels, H, W) -> [(B, widths[i], H / 2^i, W / 2^i) for each scale i]."""
        feats: list[Tensor] = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class SarEncoder(PyramidEncoder):
    """Multi-scale SAR encoder over VV/VH (dB, normalised): two residual blocks per scale.

    Args:
        in_channels: SAR channels.
        widths: channels per scale.
    """

    def __init__(self, in_channels: int, widths: list[int]):
        super().__init__(in_channels, widths, blocks_per_scale=2)
