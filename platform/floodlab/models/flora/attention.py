"""Windowed (optionally shifted) multi-head cross-attention from SAR queries to optical keys."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floodlab.models.blocks import init_weights

# Hidden width of the feed-forward MLP after each cross-attention, as a multiple of C.
MLP_RATIO = 2.0


class WindowCrossAttention(nn.Module):
    """One Swin-style cross-attention block: SAR queries attend to optical keys/values.

    ``x <- x + proj(attn(LN(x), LN(kv)))`` then ``x <- x + MLP(LN(x))`` (pre-norm residuals).

    Attention is restricted to non-overlapping ``window x window`` windows: the query and
    key grids are the same pixels, so each SAR window attends to the co-located optical
    window. Feature maps are zero-padded to a multiple of the window and cropped back;
    padded keys are masked out. With ``shift`` the grid is cyclically shifted by half a
    window first (Swin's SW-MSA), and keys that wrapped around the border are masked so
    attention stays local. A learned relative position bias (one table per head, indexed by
    the query-key offset) is added to the logits. On maps smaller than the window the
    window shrinks to the map (and the shift is dropped when one window covers it all).

    Without optical features (SAR-alone inference), queries attend globally to a small set
    of learned *prior tokens* given by the caller, with no position bias: the network's
    learned summary of what the optical prior usually contributes.

    Args:
        dim: SAR feature channels C (queries, output).
        kv_dim: optical (teacher) feature channels.
        heads: attention heads; must divide ``dim``.
        window: window side in feature pixels.
        shift: shift the windows by half a window.
    """

    def __init__(self, dim: int, kv_dim: int, heads: int, window: int, shift: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"`dim % heads == 0` must hold, but got (dim={dim}, heads={heads})")
        self.dim, self.heads, self.window, self.shift = dim, heads, window, shift
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(kv_dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * MLP_RATIO)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.apply(init_weights)  # truncated-normal linears, unit norms
        # (2w-1)^2 relative offsets x heads, as in Swin.
        self.rel_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)

    def forward(self, x: Tensor, kv: Tensor | None, prior: Tensor | None = None) -> Tensor:
        """Cross-attend SAR ``x`` to optical ``kv`` (or to ``prior`` tokens when ``kv`` is None).

        Args:
            x: SAR features (B, C, H, W).
            kv: optical features (B, kv_dim, H, W) at the same resolution, or None.
            prior: learned prior tokens (T, kv_dim), used when ``kv`` is None.

        Returns:
            Updated SAR features (B, C, H, W).
        """
        t = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        q = self.q(self.norm_q(t))
        if kv is not None:
            if kv.shape[-2:] != x.shape[-2:]:
                raise ValueError(
                    f"optical features {tuple(kv.shape)} and SAR features {tuple(x.shape)} "
                    "must have the same spatial size"
                )
            k_v = self.kv(self.norm_kv(kv.permute(0, 2, 3, 1)))  # (B, H, W, 2C)
            out = self._windowed(q, k_v)
        elif prior is not None:
            k_v = self.kv(self.norm_kv(prior))  # (T, 2C)
            out = self._global(q, k_v)
        else:
            raise ValueError("WindowCrossAttention needs optical features or prior tokens")
        t = t + self.proj(out)
        t = t + self.mlp(self.norm_mlp(t))
        return t.permute(0, 3, 1, 2).contiguous()

    # -- attention variants ---------------------------------------------------------------
    def _windowed(self, q: Tensor, k_v: Tensor) -> Tensor:
        """Windowed attention on channel-last maps: q (B, H, W, C), k_v (B, H, W, 2C)."""
        b, h, w, c = q.shape
        ws = min(self.window, max(h, w))
        hp, wp = h + (-h) % ws, w + (-w) % ws
        shift = ws // 2 if self.shift and (hp > ws or wp > ws) else 0
        if (hp, wp) != (h, w):
            q = F.pad(q, (0, 0, 0, wp - w, 0, hp - h))
            k_v = F.pad(k_v, (0, 0, 0, wp - w, 0, hp - h))
        if shift:
            q = torch.roll(q, (-shift, -shift), dims=(1, 2))
            k_v = torch.roll(k_v, (-shift, -shift), dims=(1, 2))
        nh, d = self.heads, c // self.heads
        qw = _partition(q, ws).unflatten(-1, (nh, d)).transpose(-2, -3)  # (B, nW, nh, N, d)
        k, v = _partition(k_v, ws).chunk(2, dim=-1)
        kw = k.unflatten(-1, (nh, d)).transpose(-2, -3)
        vw = v.unflatten(-1, (nh, d)).transpose(-2, -3)

        index = _relative_index(ws, self.window, q.device)  # (N, N)
        bias = self.rel_bias[index].permute(2, 0, 1)  # (nh, N, N)
        mask = _window_mask(h, w, hp, wp, ws, shift, q.device)  # (nW, N, N) or None
        attn_mask = bias.unsqueeze(0).unsqueeze(0)  # (1, 1, nh, N, N)
        if mask is not None:
            attn_mask = attn_mask + mask[None, :, None]  # (1, nW, nh, N, N)
        attn_mask = attn_mask.to(qw.dtype)
        out = F.scaled_dot_product_attention(qw, kw, vw, attn_mask=attn_mask)  # (B, nW, nh, N, d)
        out = out.transpose(-2, -3).flatten(-2)  # (B, nW, N, C)
        out = _merge(out, b, hp, wp, ws)  # (B, Hp, Wp, C)
        if shift:
            out = torch.roll(out, (shift, shift), dims=(1, 2))
        return out[:, :h, :w]

    def _global(self, q: Tensor, k_v: Tensor) -> Tensor:
        """Every query attends to all prior tokens: q (B, H, W, C), k_v (T, 2C)."""
        b, h, w, c = q.shape
        nh, d = self.heads, c // self.heads
        qh = q.reshape(b, h * w, nh, d).transpose(1, 2)  # (B, nh, HW, d)
        k, v = k_v.chunk(2, dim=-1)  # (T, C) each
        kh = k.reshape(1, -1, nh, d).transpose(1, 2).expand(b, -1, -1, -1).to(qh.dtype)
        vh = v.reshape(1, -1, nh, d).transpose(1, 2).expand(b, -1, -1, -1).to(qh.dtype)
        out = F.scaled_dot_product_attention(qh, kh, vh)  # (B, nh, HW, d)
        return out.transpose(1, 2).reshape(b, h, w, c)


def _partition(x: Tensor, ws: int) -> Tensor:
    """(B, H, W, C) -> (B, nW, ws*ws, C) windows in row-major window order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // ws) * (w // ws), ws * ws, c)


def _merge(x: Tensor, b: int, h: int, w: int, ws: int) -> Tensor:
    """Inverse of `_partition`: (B, nW, ws*ws, C) -> (B, H, W, C)."""
    c = x.shape[-1]
    x = x.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


@lru_cache(maxsize=64)
@torch.inference_mode(False)  # cached for training too: never an inference-mode tensor
def _relative_index(ws: int, table_window: int, device: torch.device) -> Tensor:
    """Index (N, N) into a (2*table_window-1)^2 bias table for query-key offsets in a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(
        1
    )  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :] + (table_window - 1)  # (2, N, N) >= 0
    return (rel[0] * (2 * table_window - 1) + rel[1]).to(device)


@lru_cache(maxsize=64)
@torch.inference_mode(False)
def _window_mask(
    h: int, w: int, hp: int, wp: int, ws: int, shift: int, device: torch.device
) -> Tensor | None:
    """Additive mask (nW, N, N): -inf between pixels that must not attend (padding, wrap).

    Cached per geometry and device (a constant, never part of the graph).
    """
    if shift == 0 and (hp, wp) == (h, w):
        return None
    # Label each pixel of the padded, unshifted grid: padding, and (when shifted) whether it
    # wraps around the top/left border after the cyclic shift. Only equal labels may attend.
    rows = torch.arange(hp)[:, None].expand(hp, wp)
    cols = torch.arange(wp)[None, :].expand(hp, wp)
    label = ((rows >= h) | (cols >= w)).long()
    if shift:
        label = label + 2 * (rows < shift).long() + 4 * (cols < shift).long()
        label = torch.roll(label, (-shift, -shift), dims=(0, 1))
    win = _partition(label[None, :, :, None], ws)[0, :, :, 0]  # (nW, N)
    allowed = win[:, :, None] == win[:, None, :]  # (nW, N, N)
    return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf")).to(device)
