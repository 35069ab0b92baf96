"""FLoRA's two decoders (translation and segmentation): U-Nets over the fused pyramid."""

from __future__ import annotations

from torch import Tensor, nn

from floodlab.models.blocks import UNetDecoderBlock, init_weights


class PyramidDecoder(nn.Module):
    """U-Net decoder from the deepest feature map up to scale 0, with a skip at every scale.

    Block ``i`` (deep to shallow) upsamples 2x, concatenates the scale-``i`` features and
    applies two 3x3 ConvNormAct to ``widths[i]`` channels; a 1x1 conv head maps
    ``widths[0]`` to ``out_channels``.

    Args:
        widths: channels per scale of the (fused) pyramid, shallow to deep.
        out_channels: output channels (RGB bands or class logits).
    """

    def __init__(self, widths: list[int], out_channels: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            UNetDecoderBlock(deep, skip, skip)
            for deep, skip in zip(widths[:0:-1], widths[-2::-1], strict=True)
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.apply(init_weights)

    def forward(self, feats: list[Tensor]) -> Tensor:
        """Pyramid [(B, widths[i], H / 2^i, W / 2^i)] -> (B, out_channels, H, W)."""
        x = feats[-1]
        for block, skip in zip(self.blocks, feats[-2::-1], strict=True):
            x = block(x, skip)
        return self.head(x)
