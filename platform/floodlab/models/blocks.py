"""Shared building blocks: conv/norm/act, SE and spatial attention, residual and U-Net blocks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvNormAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation (the conv has no bias: the norm provides it).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel_size: square kernel side.
        stride: convolution stride.
        dilation: convolution dilation; padding keeps "same" size at stride 1.
        groups: convolution groups (``in_ch`` for depthwise).
        act: activation module class, or None for a linear (norm-only) output.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
    ):
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_ch,
                out_ch,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_ch),
        ]
        if act is not None:
            layers.append(act(inplace=True) if act in _INPLACE_ACTS else act())
        super().__init__(*layers)


_INPLACE_ACTS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.LeakyReLU)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation channel attention (Hu et al., 2018).

    Global average pool -> 1x1 reduce -> act -> 1x1 expand -> sigmoid -> rescale channels.

    Args:
        channels: channels of the gated feature map.
        squeeze_channels: width of the bottleneck.
        act: activation between the two 1x1 convs.
    """

    def __init__(self, channels: int, squeeze_channels: int, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, max(1, squeeze_channels), 1)
        self.act = act()
        self.fc2 = nn.Conv2d(max(1, squeeze_channels), channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Rescale each channel of ``x`` (B, C, H, W) by a learned gate in (0, 1)."""
        s = F.adaptive_avg_pool2d(x, 1)  # (B, C, 1, 1)
        s = self.fc2(self.act(self.fc1(s)))
        return x * torch.sigmoid(s)


class SpatialAttention(nn.Module):
    """CBAM-style spatial attention: a 7x7 conv on channel-mean and channel-max maps.

    Args:
        kernel_size: side of the conv over the two pooled maps.
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        """Rescale each pixel of ``x`` (B, C, H, W) by a learned gate in (0, 1)."""
        pooled = torch.cat(
            [x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1
        )  # (B, 2, H, W)
        return x * torch.sigmoid(self.conv(pooled))


class StochasticDepth(nn.Module):
    """Drop a residual branch per sample with probability ``p`` (Huang et al., 2016).

    Kept samples are scaled by ``1 / (1 - p)`` so the expectation is unchanged; identity in
    eval mode.

    Args:
        p: drop probability in [0, 1).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """Zero whole samples of ``x`` (B, ...) at random during training."""
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ResidualBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with optional squeeze-and-excitation.

    ``out = relu(shortcut(x) + se(bn(conv(relu(bn(conv(x)))))))``; the shortcut is a strided
    1x1 conv + BN when the shape changes.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: stride of the first conv (2 halves the resolution).
        se_reduction: SE bottleneck reduction, or None for no channel attention.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, se_reduction: int | None = None):
        super().__init__()
        self.conv1 = ConvNormAct(in_ch, out_ch, 3, stride=stride)
        self.conv2 = ConvNormAct(out_ch, out_ch, 3, act=None)
        self.se = SqueezeExcite(out_ch, out_ch // se_reduction) if se_reduction else nn.Identity()
        self.shortcut: nn.Module = (
            ConvNormAct(in_ch, out_ch, 1, stride=stride, act=None)
            if stride != 1 or in_ch != out_ch
            else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_ch, H, W) -> (B, out_ch, H / stride, W / stride)."""
        return self.act(self.shortcut(x) + self.se(self.conv2(self.conv1(x))))


def expand_depthwise(
    in_ch: int,
    hidden: int,
    kernel_size: int,
    stride: int,
    act: type[nn.Module],
    dilation: int = 1,
) -> list[nn.Module]:
    """The first layers of an inverted residual block (MobileNetV2, EfficientNet's MBConv).

    A 1x1 expansion from ``in_ch`` to ``hidden`` channels (left out when the block does not
    widen) and the depthwise ``kernel_size`` conv, both ConvNormAct with ``act``.
    """
    layers: list[nn.Module] = []
    if hidden != in_ch:
        layers.append(ConvNormAct(in_ch, hidden, 1, act=act))
    layers.append(
        ConvNormAct(
            hidden, hidden, kernel_size, stride=stride, dilation=dilation, groups=hidden, act=act
        )
    )
    return layers


class UNetDecoderBlock(nn.Module):
    """U-Net decoder block: 2x nearest upsampling, concat the skip, two 3x3 ConvNormAct.

    Args:
        in_ch: channels of the deeper feature map.
        skip_ch: channels of the skip connection (0 for none).
        out_ch: output channels.
    """

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = ConvNormAct(in_ch + skip_ch, out_ch, 3)
        self.conv2 = ConvNormAct(out_ch, out_ch, 3)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        """Upsample ``x`` to the skip's size (or 2x) and merge it with ``skip``."""
        size = skip.shape[-2:] if skip is not None else (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Replicate-pad the bottom/right of ``x`` (B, C, H, W) so H and W divide ``multiple``.

    Replicate (not zero) padding: zero is a meaningful value for dB backscatter and
    normalised inputs, an edge copy is not.

    Returns:
        The padded tensor and the original (H, W), for `crop_to`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


def adaptive_avg_pool(x: Tensor, bins: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` written as two small averaging matrices.

    Bin ``i`` of an axis of ``n`` pixels averages pixels ``floor(i * n / bins)`` to
    ``ceil((i + 1) * n / bins) - 1``, PyTorch's rule; the matrices are built from the
    input's size when the graph runs, so an exported model (ONNX) pools any input size,
    where the library op is exported with the bins of the size it was traced with.

    Args:
        x: (B, C, H, W) features.
        bins: output side.

    Returns:
        (B, C, bins, bins).
    """

    def averaging(n: int) -> Tensor:  # (bins, n): row i averages the pixels of bin i
        i = torch.arange(bins, device=x.device)[:, None]
        j = torch.arange(n, device=x.device)[None, :]
        start = (i * n) // bins
        end = ((i + 1) * n + bins - 1) // bins
        inside = ((j >= start) & (j < end)).to(x.dtype)
        return inside / (end - start).to(x.dtype)

    h, w = x.shape[-2:]
    return torch.matmul(torch.matmul(averaging(h), x), averaging(w).transpose(0, 1))


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the bottom/right padding added by `pad_to_multiple`."""
    return x[..., : size[0], : size[1]]


def init_weights(module: nn.Module) -> None:
    """Default initialisation: Kaiming-normal convs (fan-out, ReLU), unit norms, small linears.

    Apply with ``model.apply(init_weights)`` before any block-specific initialisation
    (zero-initialised FiLM heads, residual gates) so those are not overwritten.
    """
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm | nn.LayerNorm):
        if module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never below 90 %.

    The rule used by MobileNetV2 and EfficientNet for width scaling.
    """
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def num_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def atanh_clamped(value: float, limit: float = 0.999) -> float:
    """``atanh(value)`` with ``value`` clamped to (-limit, limit), so +-1 stays finite."""
    return math.atanh(max(-limit, min(limit, value)))
