"""MobileNetV2 encoder (Sandler et al., 2018) returning features at strides 2..32 (or dilated)."""

from __future__ import annotations

from torch import Tensor, nn

from floodlab.models.blocks import ConvNormAct, expand_depthwise, init_weights, make_divisible

# (expansion t, output channels c, repeats n, first stride s) — Table 2 of the paper.
MOBILENETV2_CONFIG: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
# Indices into `features` ending each output stage (strides 2, 4, 8, 16, 32).
_STAGE_ENDS = (2, 4, 7, 14, 19)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise -> 1x1 linear projection (+ skip).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: depthwise stride (1 or 2).
        expand_ratio: hidden width as a multiple of ``in_ch``.
        dilation: depthwise dilation (output-stride-8 variants).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int, dilation: int = 1):
        super().__init__()
        hidden = round(in_ch * expand_ratio)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.conv = nn.Sequential(
            *expand_depthwise(in_ch, hidden, 3, stride, nn.ReLU6, dilation),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_ch, H, W) -> (B, out_ch, H / stride, W / stride)."""
        y = self.conv(x)
        return x + y if self.use_residual else y


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 feature extractor for segmentation (no classifier), randomly initialised.

    ``features`` follows the usual layout (index 0 = stem, 1..17 = inverted residual blocks,
    18 = the final 1x1 conv to 1280) so a MobileNetV2 ``features.*`` state_dict maps key
    for key; `floodlab.models.weights.load_weights` with ``input_conv=INPUT_CONV`` adapts an
    RGB stem to ``in_channels``.

    Args:
        in_channels: input channels (1 for band-agnostic SAR-KD samples).
        output_stride: 32 (plain) or 8 (the strides of the stride-16 and stride-32 stages are
            replaced by dilation 2 and 4, as in DeepLab/PSPNet).
        last_conv: keep the final 1x1 conv to 1280 channels; without it the deepest stage
            has 320 channels.
        width_mult: channel multiplier (1.0 = the standard network).
    """

    INPUT_CONV = "features.0.0.weight"

    def __init__(
        self,
        in_channels: int = 3,
        output_stride: int = 32,
        last_conv: bool = True,
        width_mult: float = 1.0,
    ):
        super().__init__()
        if output_stride not in (8, 32):
            raise ValueError(f"output_stride must be 8 or 32, but got {output_stride}")
        stem = make_divisible(STEM_CHANNELS * width_mult)
        layers: list[nn.Module] = [ConvNormAct(in_channels, stem, 3, stride=2, act=nn.ReLU6)]
        stage_channels: list[int] = []
        in_ch, stride_so_far, dilation = stem, 2, 1
        for t, c, n, s in MOBILENETV2_CONFIG:
            out_ch = make_divisible(c * width_mult)
            for i in range(n):
                stride = s if i == 0 else 1
                block_dilation = dilation
                if stride == 2 and stride_so_far >= output_stride:
                    # Keep the resolution; later blocks of this stage see twice the dilation.
                    stride, dilation = 1, dilation * 2
                elif stride == 2:
                    stride_so_far *= 2
                layers.append(InvertedResidual(in_ch, out_ch, stride, t, block_dilation))
                in_ch = out_ch
        if last_conv:
            last = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
            layers.append(ConvNormAct(in_ch, last, 1, act=nn.ReLU6))
            in_ch = last
        self.features = nn.Sequential(*layers)
        self.output_stride = output_stride
        # Output channels after each stage end (strides 2, 4, 8, 16, 32 when undilated).
        for end in _STAGE_ENDS:
            block = self.features[min(end, len(self.features)) - 1]
            stage_channels.append(_out_channels(block))
        self.out_channels: list[int] = stage_channels
        self.apply(init_weights)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, in_channels, H, W) -> five feature maps, shallow to deep.

        Strides (2, 4, 8, 16, 32), or (2, 4, 8, 8, 8) at output stride 8.
        """
        feats: list[Tensor] = []
        start = 0
        for end in _STAGE_ENDS:
            for idx in range(start, min(end, len(self.features))):
                x = self.features[idx](x)
            feats.append(x)
            start = end
        return feats


def _out_channels(block: nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels
