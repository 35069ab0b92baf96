"""FLoRA's per-scale fusion latent: windowed cross-attention + FiLM, merged by a gated residual."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from floodlab.models.blocks import atanh_clamped
from floodlab.models.flora.attention import WindowCrossAttention

# Learned prior tokens per fused scale that SAR-only queries attend to.
PRIOR_TOKENS = 16


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al., 2018): ``x * (1 + gamma) + beta``.

    ``gamma`` and ``beta`` (one per channel) come from a linear layer on a conditioning
    vector (the globally pooled optical features). The layer is zero-initialised, so FiLM
    starts as the identity.

    Args:
        cond_dim: conditioning vector size.
        dim: modulated channels.
    """

    def __init__(self, cond_dim: int, dim: int):
        super().__init__()
        self.linear = nn.Linear(cond_dim, 2 * dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """Modulate ``x`` (B, C, H, W) with ``cond`` (B, cond_dim)."""
        gamma, beta = self.linear(cond).chunk(2, dim=-1)  # (B, C) each
        return x * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]


class ScaleFusion(nn.Module):
    """Fuse SAR features with optical-teacher features at one scale.

    ``h = FiLM(CrossAttn(sar, optical))`` (each part optional), ``fused = h - sar`` (the
    optical update), ``out = sar + tanh(g) * fused`` with a per-channel gate ``g``
    initialised at ``atanh(gate_init)``: with ``gate_init`` near zero the block starts as
    (almost) the identity, so fusion cannot overcorrect the SAR features early in training,
    and with both parts switched off it is exactly the identity.

    Cross-attention is one window block, followed by a half-window-shifted block when
    ``shifted`` (Swin's W-MSA / SW-MSA pair).

    SAR alone (``optical=None``): the cross-attention attends to `PRIOR_TOKENS` learned
    prior tokens (global, not windowed) and FiLM is conditioned on a learned prior vector
    in place of the pooled optical features. Both are ordinary parameters trained on the
    batches where the optical prior is dropped, so SAR-only inference uses the same path
    with a learned stand-in for the missing optical prior. (A learned prior *feature map*
    was rejected: it would fix the input size.)

    Args:
        dim: SAR channels at this scale.
        teacher_dim: optical teacher channels at this scale.
        heads: attention heads.
        window: attention window side.
        shifted: add a shifted-window block.
        cross_attention: use cross-attention.
        film: use FiLM.
        gate_init: initial ``tanh(g)``.
    """

    def __init__(
        self,
        dim: int,
        teacher_dim: int,
        heads: int,
        window: int,
        shifted: bool,
        cross_attention: bool,
        film: bool,
        gate_init: float,
    ):
        super().__init__()
        self.attn = nn.ModuleList()
        self.prior_tokens: nn.Parameter | None = None
        if cross_attention:
            self.attn.append(WindowCrossAttention(dim, teacher_dim, heads, window, shift=False))
            if shifted:
                self.attn.append(WindowCrossAttention(dim, teacher_dim, heads, window, shift=True))
            self.prior_tokens = nn.Parameter(torch.empty(PRIOR_TOKENS, teacher_dim))
            nn.init.trunc_normal_(self.prior_tokens, std=0.02)
        self.film: FiLM | None = FiLM(teacher_dim, dim) if film else None
        self.prior_condition: nn.Parameter | None = None
        if film:
            self.prior_condition = nn.Parameter(torch.empty(teacher_dim))
            nn.init.trunc_normal_(self.prior_condition, std=0.02)
        self.gate = nn.Parameter(torch.full((dim,), atanh_clamped(gate_init)))

    def forward(self, sar: Tensor, optical: Tensor | None) -> Tensor:
        """Fuse ``sar`` (B, C, H, W) with ``optical`` (B, C_t, H, W), or with the learned prior.

        Returns:
            Gated fused features (B, C, H, W).
        """
        h = sar
        for layer in self.attn:
            h = layer(h, optical, self.prior_tokens)
        if self.film is not None and self.prior_condition is not None:
            if optical is not None:
                cond = optical.mean(dim=(2, 3))  # (B, C_t) global average pool
            else:
                cond = self.prior_condition.expand(sar.shape[0], -1)
            h = self.film(h, cond)
        fused = h - sar  # the optical update
        return sar + torch.tanh(self.gate)[None, :, None, None] * fused
