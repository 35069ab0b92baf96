"""An exponential moving average of the trained weights (`trainer.ema_decay`).

After every optimiser step each averaged tensor moves towards the network's own:
``avg = d * avg + (1 - d) * w`` with ``d = min(decay, (1 + n) / (10 + n))`` after ``n``
steps, the warm-up of TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` and timm's
model EMA, so the first averages are not dominated by the initial weights. BatchNorm
running statistics are averaged like the weights; integer buffers (batch counters) are
copied. The averaged and trained tensors are paired once, and each update is one fused
``torch._foreach_lerp_`` over all of them (`benchmarks/weight_average.py` measures it
against building both state dicts every step).

The average is what the run is judged and used by: the loop validates it (so the best
checkpoint is chosen on it), and checkpoints hold it as their ``task`` weights, which
`evaluate`, `predict`, `export` and a distillation teacher load. The weights being trained
go into the checkpoint as ``training`` so that a resumed run continues both.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from floodlab.tasks.base import Task, unwrap

WARMUP_OFFSET = 10  # d_n = min(decay, (1 + n) / (WARMUP_OFFSET + n))


class WeightAverage:
    """The moving average of every trainable network of a task.

    Networks without trainable parameters (frozen teachers) are not copied: their average
    is themselves.

    Args:
        task: the task being trained (its nets may be DDP-wrapped).
        decay: the decay per optimiser step, in (0, 1).
        steps: optimiser steps already taken (a resumed run continues the warm-up).
    """

    def __init__(self, task: Task, decay: float, steps: int = 0):
        self.decay, self.steps = decay, steps
        self.trained: dict[str, nn.Module] = {n: unwrap(m) for n, m in task.nets.items()}
        self.nets: dict[str, nn.Module] = {
            name: copy.deepcopy(net).eval().requires_grad_(False)
            for name, net in self.trained.items()
            if any(p.requires_grad for p in net.parameters())
        }
        self._floats: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        self._counters: list[tuple[torch.Tensor, torch.Tensor]] = []
        for name, averaged in self.nets.items():
            # state_dict() tensors share storage with the modules' parameters and buffers,
            # which optimisers, BatchNorm and load_state_dict all update in place.
            trained = self.trained[name].state_dict()
            for key, value in averaged.state_dict().items():
                if value.is_floating_point():
                    self._floats[0].append(value)
                    self._floats[1].append(trained[key])
                else:
                    self._counters.append((value, trained[key]))

    def current_decay(self) -> float:
        """The decay the next update uses."""
        n = self.steps + 1
        return min(self.decay, (1 + n) / (WARMUP_OFFSET + n))

    @torch.no_grad()
    def update(self) -> None:
        """Move the average one optimiser step towards the trained weights."""
        weight = 1.0 - self.current_decay()
        self.steps += 1
        averaged, trained = self._floats
        if averaged:
            torch._foreach_lerp_(averaged, trained, weight)
        for value, source in self._counters:
            value.copy_(source)

    @contextlib.contextmanager
    def swapped_in(self, task: Task) -> Iterator[Task]:
        """Let ``task`` run on the averaged networks (validation, image panels)."""
        originals = {name: task.nets[name] for name in self.nets}
        for name, averaged in self.nets.items():
            task.nets[name] = averaged
        try:
            yield task
        finally:
            for name, net in originals.items():
                task.nets[name] = net

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights in `Task.state_dict`'s form (what a checkpoint's ``task`` holds)."""
        return {
            name: self.nets.get(name, trained).state_dict()
            for name, trained in self.trained.items()
        }

    def training_state_dict(self) -> dict[str, Any]:
        """The weights being trained, in `Task.state_dict`'s form."""
        return {name: net.state_dict() for name, net in self.trained.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load averaged weights saved by `state_dict`."""
        for name, averaged in self.nets.items():
            averaged.load_state_dict(state[name])
