"""Helpers every task uses: optimisers from the spec, loss composition by weight, AMP guards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from floodlab.data import sample
from floodlab.losses import (
    bce_loss,
    boundary_loss,
    charbonnier_loss,
    dice_loss,
    edge_loss,
    fft_loss,
    focal_loss,
    focal_tversky_loss,
    ssim_loss,
)
from floodlab.specs.loss import RecLossSpec, SegLossSpec
from floodlab.specs.train import OptimSpec

Batch = dict[str, Any]


def build_optimizer(
    params: Iterable[nn.Parameter], optim: OptimSpec, lr: float | None = None
) -> torch.optim.Optimizer:
    """The optimiser named by `optim` over `params`.

    Args:
        params: parameters to optimise (frozen ones are skipped).
        optim: the spec's `optim` section (name, lr, betas, weight decay, momentum).
        lr: learning rate overriding `optim.lr` (e.g. `optim.d_lr` for discriminators).
    """
    trainable = [p for p in params if p.requires_grad]
    rate = optim.lr if lr is None else lr
    if optim.name == "adam":
        return torch.optim.Adam(
            trainable, lr=rate, betas=optim.betas, weight_decay=optim.weight_decay
        )
    if optim.name == "adamw":
        return torch.optim.AdamW(
            trainable, lr=rate, betas=optim.betas, weight_decay=optim.weight_decay
        )
    return torch.optim.SGD(
        trainable, lr=rate, momentum=optim.momentum, weight_decay=optim.weight_decay
    )


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (the module itself otherwise)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients into the parameters of `modules` (e.g. a discriminator
    during the generator's step), restoring each parameter's flag afterwards."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def full_precision(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Disable autocast: losses and metrics (SSIM windows, FFTs, sums) run in fp32."""
    return torch.autocast(device_type=device.type, enabled=False)


def batch_valid(batch: Batch) -> Tensor | None:
    """The batch's label validity (B, H, W) bool, or None when the dataset has none."""
    valid = batch.get(sample.VALID)
    return None if valid is None else valid.bool()


def target_valid(target: Tensor) -> Tensor:
    """(B, H, W) True where every band of a (B, C, H, W) translation target is finite."""
    return torch.isfinite(target).all(dim=1)


def seg_loss_names(seg: SegLossSpec) -> list[str]:
    """Names of the segmentation terms with a non-zero weight."""
    return [n for n in ("dice", "bce", "boundary", "focal_tversky", "focal") if getattr(seg, n) > 0]


def rec_loss_names(rec: RecLossSpec) -> list[str]:
    """Names of the pixel reconstruction terms with a non-zero weight (not adversarial)."""
    return [n for n in ("charbonnier", "ssim", "fft", "edge") if getattr(rec, n) > 0]


def seg_loss_terms(
    seg: SegLossSpec, logits: Tensor, target: Tensor, valid: Tensor | None, scale: float = 1.0
) -> dict[str, Tensor]:
    """Weighted segmentation terms by name; zero-weight terms are not computed.

    Args:
        seg: the `loss.seg` weights and parameters.
        logits: (B, 1, H, W) logits.
        target: (B, H, W) {0, 1} labels.
        valid: optional (B, H, W) bool.
        scale: extra factor on every term (SAR-KD's beta on the supervised loss).

    Returns:
        ``{name: weight * scale * loss}``; their sum is the segmentation loss.
    """
    fns = {
        "dice": lambda: dice_loss(logits, target, valid),
        "bce": lambda: bce_loss(logits, target, valid),
        "boundary": lambda: boundary_loss(logits, target, valid),
        "focal_tversky": lambda: focal_tversky_loss(
            logits, target, valid, seg.tversky_alpha, seg.tversky_beta, seg.tversky_gamma
        ),
        "focal": lambda: focal_loss(logits, target, valid, seg.focal_alpha, seg.focal_gamma),
    }
    return {name: getattr(seg, name) * scale * fns[name]() for name in seg_loss_names(seg)}


def rec_loss_terms(
    rec: RecLossSpec, pred: Tensor, target: Tensor, valid: Tensor | None
) -> dict[str, Tensor]:
    """Weighted pixel reconstruction terms by name; zero-weight terms are not computed.

    Args:
        rec: the `loss.rec` weights and parameters.
        pred: (B, C, H, W) translation in [0, 1].
        target: (B, C, H, W) target in [0, 1].
        valid: optional (B, H, W) bool of usable target pixels.
    """
    fns = {
        "charbonnier": lambda: charbonnier_loss(pred, target, valid, rec.charbonnier_eps),
        "ssim": lambda: ssim_loss(pred, target, valid),
        "fft": lambda: fft_loss(pred, target, valid),
        "edge": lambda: edge_loss(pred, target, valid),
    }
    return {name: getattr(rec, name) * fns[name]() for name in rec_loss_names(rec)}


def total(terms: dict[str, Tensor]) -> Tensor:
    """Sum of the weighted terms (the caller guarantees at least one)."""
    values = list(terms.values())
    out = values[0]
    for value in values[1:]:
        out = out + value
    return out


def to_numpy(x: Tensor) -> np.ndarray:
    """A tensor as a float32 numpy array on the CPU (for panels)."""
    return x.detach().float().cpu().numpy()


def detached(terms: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detached fp32 scalars for the loop's logs."""
    return {k: v.detach().float() for k, v in terms.items()}
