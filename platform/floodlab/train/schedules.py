"""Per-epoch learning-rate schedules from `spec.schedule`: a pure `lr_at` plus a resumable stepper.

Every schedule is a function of the epoch index alone (`lr_at`), except ReduceLROnPlateau,
which also watches a metric; `EpochLR` applies either to an optimiser's parameter groups at
the start of each epoch and carries the plateau state through checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from floodlab.specs import ScheduleSpec


def lr_at(epoch: int, base_lr: float, spec: ScheduleSpec, epochs: int) -> float:
    """Learning rate of the 0-based `epoch` before any plateau decay.

    Linear warm-up over `spec.warmup_epochs` (``base * (e + 1) / (warmup + 1)``, so the
    first epoch never runs at lr 0), then the schedule on the remaining epochs:

    * constant: ``base``;
    * cosine: from ``base`` to ``eta_min`` over the remaining epochs;
    * cosine_warm_restarts: SGDR, cycles of ``t0 * t_mult**k`` epochs;
    * step: ``base * gamma ** (e // step_size)``;
    * plateau: ``base`` (the decay depends on the monitored metric, see `EpochLR`).

    Args:
        epoch: 0-based epoch index.
        base_lr: the optimiser's configured learning rate.
        spec: the schedule section.
        epochs: total training epochs.
    """
    if epoch < spec.warmup_epochs:
        return base_lr * (epoch + 1) / (spec.warmup_epochs + 1)
    e = epoch - spec.warmup_epochs
    n = max(1, epochs - spec.warmup_epochs)
    eta_min = min(spec.eta_min, base_lr)
    if spec.kind == "cosine":
        return eta_min + (base_lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * min(e, n) / n))
    if spec.kind == "cosine_warm_restarts":
        t_cur, t_i = e, spec.t0
        while t_cur >= t_i:  # walk through completed cycles
            t_cur -= t_i
            t_i *= spec.t_mult
        return eta_min + (base_lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))
    if spec.kind == "step":
        return base_lr * spec.gamma ** (e // spec.step_size)
    return base_lr  # constant, plateau


class EpochLR:
    """Sets an optimiser's learning rates at the start of every epoch; resumable.

    Each parameter group keeps its own base rate (``initial_lr``), so groups with different
    rates (e.g. a discriminator's `d_lr`) keep their ratio.

    Args:
        optimizer: the optimiser whose groups are driven.
        spec: the schedule section.
        epochs: total training epochs.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, spec: ScheduleSpec, epochs: int):
        self.optimizer = optimizer
        self.spec = spec
        self.epochs = epochs
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        # ReduceLROnPlateau state: multiplier, best value, epochs without improvement.
        self.scale = 1.0
        self.best: float | None = None
        self.bad_epochs = 0

    def start_epoch(self, epoch: int) -> float:
        """Apply the rate of 0-based `epoch` to every group; returns the first group's rate."""
        for group in self.optimizer.param_groups:
            lr = lr_at(epoch, group["initial_lr"], self.spec, self.epochs)
            if self.spec.kind == "plateau" and epoch >= self.spec.warmup_epochs:
                lr = max(lr * self.scale, min(self.spec.eta_min, group["initial_lr"]))
            group["lr"] = lr
        return float(self.optimizer.param_groups[0]["lr"])

    def observe(self, value: float | None) -> None:
        """Feed the monitored metric after an evaluation (plateau only; others ignore it)."""
        if self.spec.kind != "plateau" or value is None or not math.isfinite(value):
            return
        better = (
            self.best is None
            or (self.spec.mode == "max" and value > self.best)
            or (self.spec.mode == "min" and value < self.best)
        )
        if better:
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.spec.patience:
            self.scale *= self.spec.factor
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        """Plateau state (the other schedules are pure functions of the epoch)."""
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`."""
        self.scale = float(state["scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
