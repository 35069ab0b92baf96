"""The Task contract between model families and the training loop.

A Task owns its networks, composes its losses, updates its metrics and knows how to draw
its own image panels. The loop (floodlab.train.loop) owns devices, precision, gradient
clipping, optimiser stepping, schedules, NaN checks, checkpoints and logging, and hands a
`StepContext` to `train_step` so a task with several optimisers (GANs) or a custom
gradient treatment (PCGrad) stays in control of *when* it steps without re-implementing
AMP or clipping.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import Metric

from floodlab.specs import ExperimentSpec

Batch = dict[str, Any]


class StepContext(Protocol):
    """What the loop gives a task for one training step."""

    epoch: int
    global_step: int

    def autocast(self) -> AbstractContextManager[Any]:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        ...

    def backward(self, loss: Tensor, opt: str = "main") -> None:
        """Backward of a (scaled, under fp16) loss for optimiser `opt`."""
        ...

    def step(self, opt: str = "main") -> None:
        """Unscale, check for non-finite gradients, clip, step and zero the grads of `opt`."""
        ...


class Task(abc.ABC):
    """Model(s) + losses + metrics + steps of one family.

    Attributes:
        spec: the experiment spec the task was built from.
        nets: the trainable networks by name ("model", or "g_ab", "g_ba", "d_a", "d_b", ...).
            The Ray worker may replace entries with DDP-wrapped modules; always call them
            through `self.nets[...]`.
        device: where the networks and metric states are (set by `to`).
        find_unused_parameters: whether DDP must tolerate parameters without gradients in
            a step (e.g. FLoRA's teacher when the optical prior is dropped).
    """

    find_unused_parameters: bool = False

    def __init__(self, spec: ExperimentSpec):
        self.spec = spec
        self.nets: nn.ModuleDict = nn.ModuleDict()
        self.device = torch.device("cpu")

    # -- optimisation -------------------------------------------------------------------
    @abc.abstractmethod
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name; "main" for single-optimiser families, "g"/"d" for GANs."""

    @abc.abstractmethod
    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, Tensor]:
        """One training step: forward, losses, ctx.backward, ctx.step.

        Returns:
            Detached scalar tensors: "loss" (the total) and every weighted component by
            its name ("dice", "bce", "charbonnier", "kd", "g_adv", ...).
        """

    # -- evaluation ---------------------------------------------------------------------
    @abc.abstractmethod
    def eval_step(self, batch: Batch) -> dict[str, Tensor]:
        """Forward without gradients, update the metrics, return detached loss components."""

    def compute_metrics(self) -> dict[str, float]:
        """Metrics accumulated since the last reset, reduced across DDP ranks; by default
        the values of every `metric_states` accumulator, in order.

        Keys have no split prefix ("iou", "f1", "psnr", ...); the loop adds "val/".
        """
        return {k: float(v) for m in self.metric_states() for k, v in m.compute().items()}

    def metric_states(self) -> Iterable[Metric]:
        """The metric accumulators (default: none): `to` moves them, `reset_metrics` clears
        them and `compute_metrics` reports their values unless a task overrides it."""
        return ()

    def reset_metrics(self) -> None:
        """Clear the metric accumulators."""
        for metric in self.metric_states():
            metric.reset()

    @abc.abstractmethod
    def predict(self, batch: Batch) -> dict[str, Tensor]:
        """Inference outputs: "prob" (B, 1, H, W) in [0, 1] for segmentation families,
        "rgb"/"optical" (B, C, H, W) for translation. Runs in eval mode, no gradients."""

    def panels(self, batch: Batch, outputs: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """Image panels for TensorBoard: name -> (H, W, 3) uint8. Default: none."""
        return {}

    # -- helpers shared by every task -----------------------------------------------------
    def to(self, device: torch.device) -> Task:
        """Move networks and metric states to a device."""
        self.nets.to(device)
        for metric in self.metric_states():
            metric.to(device)
        self.device = torch.device(device)
        return self

    def train(self, mode: bool = True) -> None:
        """Set train/eval mode on every network (frozen teachers stay in eval)."""
        self.nets.train(mode)

    def eval(self) -> None:
        """Eval mode on every network."""
        self.train(False)

    def state_dict(self) -> dict[str, Any]:
        """Weights of every network (DDP wrappers unwrapped)."""
        return {name: unwrap(net).state_dict() for name, net in self.nets.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load weights saved by `state_dict`."""
        for name, net in self.nets.items():
            unwrap(net).load_state_dict(state[name])

    def num_parameters(self) -> int:
        """Trainable parameters over all networks."""
        return sum(p.numel() for p in self.nets.parameters() if p.requires_grad)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (the module itself otherwise)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module
