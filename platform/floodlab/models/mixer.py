"""Pyramid pooling and the PSPMixer student (patch embedding + MLP-Mixer blocks + PSP head)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floodlab.models.blocks import (
    ConvNormAct,
    adaptive_avg_pool,
    crop_to,
    init_weights,
    pad_to_multiple,
)

# Training patches are 256x256 (SYSTEMS.md); the token-mixing MLP mixes the tokens of one
# such patch, i.e. a (256 / patch)^2 token grid.
MIXER_WINDOW_PX = 256
# Hidden widths of the Mixer MLPs as multiples of the token width.
TOKEN_MLP_RATIO = 0.5
CHANNEL_MLP_RATIO = 1.0
PSP_MIXER_BINS: tuple[int, ...] = (1, 2, 3, 6)
PSP_MIXER_BOTTLENECK = 16


class PyramidPooling(nn.Module):
    """PSPNet pyramid pooling module: pool to several grids, reduce, upsample, concatenate.

    Each bin ``b`` average-pools to b x b (`adaptive_avg_pool`: exportable at any input
    size), reduces to ``in_ch / len(bins)`` channels with a
    1x1 conv (+BN+ReLU; the 1x1 bin has no BN, whose batch statistics would be undefined
    for a single image) and upsamples bilinearly back. The output concatenates the input
    and every branch: ``2 * in_ch`` channels.

    Args:
        in_ch: input channels.
        bins: pooled grid sides.
    """

    def __init__(self, in_ch: int, bins: tuple[int, ...] = PSP_MIXER_BINS):
        super().__init__()
        reduced = in_ch // len(bins)
        self.bins = bins
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_ch, reduced, 1), nn.ReLU(inplace=True))
            if b == 1
            else ConvNormAct(in_ch, reduced, 1)
            for b in bins
        )
        self.out_channels = in_ch + reduced * len(bins)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, C + len(bins) * C / len(bins), h, w)."""
        size = x.shape[-2:]
        pooled = [
            F.interpolate(
                branch(adaptive_avg_pool(x, b)), size=size, mode="bilinear", align_corners=False
            )
            for b, branch in zip(self.bins, self.branches, strict=True)
        ]
        return torch.cat([x, *pooled], dim=1)


class MixerBlock(nn.Module):
    """MLP-Mixer block (Tolstikhin et al., 2021): token-mixing MLP, then channel-mixing MLP.

    Both are pre-norm residual MLPs with GELU. Input (N, T, C): N windows of T tokens.

    Args:
        dim: token width C.
        tokens: tokens per window T.
        token_hidden: hidden width of the token-mixing MLP.
        channel_hidden: hidden width of the channel-mixing MLP.
    """

    def __init__(self, dim: int, tokens: int, token_hidden: int, channel_hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(
            nn.Linear(tokens, token_hidden), nn.GELU(), nn.Linear(token_hidden, tokens)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = nn.Sequential(
            nn.Linear(dim, channel_hidden), nn.GELU(), nn.Linear(channel_hidden, dim)
        )

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """Mix ``x`` (N, T, C); ``valid`` (N, T, 1) zeroes padding tokens so they add nothing."""
        y = self.norm1(x)
        if valid is not None:
            y = y * valid
        x = x + self.token_mlp(y.transpose(1, 2)).transpose(1, 2)
        x = x + self.channel_mlp(self.norm2(x))
        return x * valid if valid is not None else x


class PSPMixer(nn.Module):
    """PSPMixer student: patch embedding, MLP-Mixer blocks, pyramid-pooling head (~353K).

    1. A ``patch`` x ``patch`` strided conv embeds each patch into a ``dim``-wide token.
    2. ``depth`` Mixer blocks. The token-mixing MLP has a fixed input size, so it mixes the
       tokens of non-overlapping windows of ``MIXER_WINDOW_PX / patch`` tokens per side:
       one window (the original global Mixer) on a 256x256 patch; windows tile larger
       scenes; smaller inputs are padded with zero tokens that are masked out.
       Hidden widths: ``TOKEN_MLP_RATIO * dim`` (token MLP), ``CHANNEL_MLP_RATIO * dim``.
    3. The token map goes through pyramid pooling (bins 1, 2, 3, 6), a 3x3 conv to
       `PSP_MIXER_BOTTLENECK` channels and a 1x1 classifier, then is upsampled bilinearly
       by ``patch`` to the input resolution.

    With the defaults (patch 16, dim 128, depth 4, 1 channel) this has ~353K parameters,
    against ~349K for the original; its MLP ratios are not published, these are the ones
    that come closest at the spec's defaults.

    Args:
        in_channels: input channels.
        patch: patch-embedding size (input stride of the tokens).
        dim: token width.
        depth: number of Mixer blocks.
    """

    def __init__(self, in_channels: int = 1, patch: int = 16, dim: int = 128, depth: int = 4):
        super().__init__()
        self.patch = patch
        self.window = max(1, MIXER_WINDOW_PX // patch)  # tokens per window side
        tokens = self.window**2
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.blocks = nn.ModuleList(
            MixerBlock(
                dim,
                tokens,
                max(1, int(TOKEN_MLP_RATIO * dim)),
                max(1, int(CHANNEL_MLP_RATIO * dim)),
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.ppm = PyramidPooling(dim, PSP_MIXER_BINS)
        self.bottleneck = ConvNormAct(self.ppm.out_channels, PSP_MIXER_BOTTLENECK, 3)
        self.classifier = nn.Conv2d(PSP_MIXER_BOTTLENECK, 1, 1)
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> logits (B, 1, H, W); any H, W (padded to ``patch``)."""
        x, size = pad_to_multiple(x, self.patch)
        t = self.embed(x)  # (B, C, h, w) tokens
        b, _, h, w = t.shape
        g = self.window
        hp, wp = h + (-h) % g, w + (-w) % g
        t = F.pad(t, (0, wp - w, 0, hp - h))  # zero tokens outside the input
        valid = None
        if (hp, wp) != (h, w):
            mask = t.new_zeros(1, 1, hp, wp)
            mask[..., :h, :w] = 1.0
            valid = _windows(mask.expand(b, 1, hp, wp), g)  # (B * nW, g*g, 1)
        seq = _windows(t, g)  # (B * nW, g*g, C)
        for block in self.blocks:
            seq = block(seq, valid)
        seq = self.norm(seq)
        t = _unwindows(seq, b, hp, wp, g)[..., :h, :w]  # (B, C, h, w)
        y = self.classifier(self.bottleneck(self.ppm(t)))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return crop_to(y, size)


def _windows(x: Tensor, g: int) -> Tensor:
    """(B, C, H, W) with H, W multiples of g -> (B * H/g * W/g, g*g, C)."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // g, g, w // g, g).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(-1, g * g, c)


def _unwindows(x: Tensor, b: int, h: int, w: int, g: int) -> Tensor:
    """Inverse of `_windows`: (B * nW, g*g, C) -> (B, C, H, W)."""
    c = x.shape[-1]
    x = x.view(b, h // g, w // g, g, g, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, h, w)
