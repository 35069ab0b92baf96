"""EfficientNet encoder (Tan & Le, 2019): MBConv blocks with SE and stochastic depth, B0..B3."""

from __future__ import annotations

import math

from torch import Tensor, nn

from floodlab.models.blocks import (
    ConvNormAct,
    SqueezeExcite,
    StochasticDepth,
    expand_depthwise,
    init_weights,
    make_divisible,
)

# B0 stages: (expansion, kernel, first stride, input channels, output channels, repeats).
EFFICIENTNET_B0: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
# Compound scaling (width, depth) per variant, from the paper; resolution is not fixed here.
EFFICIENTNET_SCALING: dict[str, tuple[float, float]] = {
    "b0": (1.0, 1.0),
    "b1": (1.0, 1.1),
    "b2": (1.1, 1.2),
    "b3": (1.2, 1.4),
}
# Stage indices (0-based, into EFFICIENTNET_B0) whose outputs are the five encoder features
# at strides 2, 4, 8, 16, 32.
_FEATURE_STAGES = (0, 1, 2, 4, 6)
SE_RATIO = 0.25


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation and stochastic depth.

    1x1 expand (SiLU) -> kxk depthwise (SiLU) -> SE (squeeze to ``SE_RATIO * in_ch``) -> 1x1
    linear projection; the residual branch is dropped per sample with probability
    ``drop_path`` when the block keeps its shape.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel_size: depthwise kernel side (3 or 5).
        stride: depthwise stride.
        expand_ratio: hidden width as a multiple of ``in_ch``.
        drop_path: stochastic-depth probability of this block.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        drop_path: float,
    ):
        super().__init__()
        hidden = make_divisible(in_ch * expand_ratio)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.block = nn.Sequential(
            *expand_depthwise(in_ch, hidden, kernel_size, stride, nn.SiLU),
            SqueezeExcite(hidden, max(1, int(in_ch * SE_RATIO)), act=nn.SiLU),
            ConvNormAct(hidden, out_ch, 1, act=None),
        )
        self.stochastic_depth = StochasticDepth(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_ch, H, W) -> (B, out_ch, H / stride, W / stride)."""
        y = self.block(x)
        return x + self.stochastic_depth(y) if self.use_residual else y


class EfficientNetEncoder(nn.Module):
    """EfficientNet feature extractor (no head conv, no classifier), randomly initialised.

    Widths are B0's scaled by the variant's width multiplier (rounded to multiples of 8),
    repeats are B0's scaled by the depth multiplier (rounded up). The stochastic-depth
    probability grows linearly from 0 to ``drop_path_rate`` over the blocks. B2 gives stage
    widths 16, 24, 48, 88, 120, 208, 352 with repeats 2, 3, 3, 4, 4, 5, 2.

    Args:
        variant: ``"b0"``..``"b3"``.
        in_channels: input channels.
        drop_path_rate: stochastic-depth probability of the last block.
    """

    INPUT_CONV = "features.0.0.weight"

    def __init__(self, variant: str = "b2", in_channels: int = 3, drop_path_rate: float = 0.2):
        super().__init__()
        if variant not in EFFICIENTNET_SCALING:
            raise KeyError(
                f"Unknown EfficientNet variant '{variant}'; available: {sorted(EFFICIENTNET_SCALING)}"
            )
        width, depth = EFFICIENTNET_SCALING[variant]
        stem = make_divisible(EFFICIENTNET_B0[0][3] * width)
        stages: list[nn.Module] = [ConvNormAct(in_channels, stem, 3, stride=2, act=nn.SiLU)]
        repeats = [math.ceil(n * depth) for *_, n in EFFICIENTNET_B0]
        total, done = sum(repeats), 0
        in_ch = stem
        self.out_channels: list[int] = []
        for (t, k, s, _, c, _), n in zip(EFFICIENTNET_B0, repeats, strict=True):
            out_ch = make_divisible(c * width)
            blocks: list[nn.Module] = []
            for i in range(n):
                blocks.append(
                    MBConv(in_ch, out_ch, k, s if i == 0 else 1, t, drop_path_rate * done / total)
                )
                in_ch, done = out_ch, done + 1
            stages.append(nn.Sequential(*blocks))
        self.features = nn.Sequential(*stages)
        # features[0] is the stem, so stage i is features[i + 1].
        self.out_channels = [make_divisible(EFFICIENTNET_B0[i][4] * width) for i in _FEATURE_STAGES]
        self.apply(init_weights)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, in_channels, H, W) -> five feature maps at strides 2, 4, 8, 16, 32."""
        x = self.features[0](x)
        feats: list[Tensor] = []
        for i in range(len(EFFICIENTNET_B0)):
            x = self.features[i + 1](x)  # features[0] is the stem
            if i in _FEATURE_STAGES:
                feats.append(x)
        return feats
