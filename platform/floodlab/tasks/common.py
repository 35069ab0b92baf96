"""Helpers every task uses: optimisers from the spec, loss composition by weight, AMP guards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from floodlab.data import sample
from floodlab.losses import TASK_TERMS, TERMS, lsgan_generator_loss
from floodlab.specs.base import StrictModel
from floodlab.specs.loss import active_weights
from floodlab.specs.train import OptimSpec
from floodlab.tasks.base import unwrap as unwrap  # the one DDP unwrap, for the tasks here

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


def fooling_loss(disc: nn.Module, fake: Tensor) -> Tensor:
    """LSGAN generator loss of `fake` images through the discriminator `disc`.

    The generator's step must not train the discriminator: `disc` is frozen (and unwrapped
    from DDP) for the forward, so the gradient reaches the generator only.
    """
    net = unwrap(disc)
    with frozen(net):
        return lsgan_generator_loss(net(fake.float()))


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


def weighted_terms(
    section: str,
    weights: StrictModel,
    output: Tensor,
    target: Tensor,
    valid: Tensor | None,
    scale: float = 1.0,
) -> dict[str, Tensor]:
    """Weighted terms of one loss section by name; zero-weight terms are not computed.

    Each term's function is `floodlab.losses.TERMS["<section>.<name>"]`; terms the task
    composes from its networks (`floodlab.losses.TASK_TERMS`, e.g. ``rec.adversarial``)
    are left to the task.

    Args:
        section: the section's name in `loss` ("seg", "rec").
        weights: the spec's section (weights and the terms' parameters).
        output: logits (B, 1, H, W) for "seg", the translation (B, C, H, W) in [0, 1] for "rec".
        target: (B, H, W) {0, 1} labels for "seg", (B, C, H, W) in [0, 1] for "rec".
        valid: optional (B, H, W) bool of the pixels that count.
        scale: extra factor on every term (SAR-KD's beta on the supervised loss).

    Returns:
        ``{name: weight * scale * loss}``; their sum is the section's loss.
    """
    return {
        name: weight * scale * TERMS[f"{section}.{name}"](output, target, valid, weights)
        for name, weight in active_weights(weights).items()
        if f"{section}.{name}" not in TASK_TERMS
    }


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
