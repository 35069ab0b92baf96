"""Where the training loop is (`LoopState`), and the loop in and out of a `Checkpoint`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from floodlab.errors import TrainingError
from floodlab.specs import ExperimentSpec, spec_hash
from floodlab.tasks.base import Task
from floodlab.tracking.checkpoint import Checkpoint
from floodlab.train.averaging import WeightAverage
from floodlab.train.schedules import EpochLR


@dataclass
class LoopState:
    """Where the loop is; everything here goes into checkpoints under "loop"."""

    epoch: int = 0  # last completed epoch, 1-based (0 = none yet)
    global_step: int = 0  # optimisation steps so far (TensorBoard's x axis)
    best_metric: float | None = None  # best trainer.checkpoint_metric so far
    best_epoch: int | None = None
    early_best: float | None = None  # best early-stopping metric so far
    early_bad: int = 0  # checks without improvement
    stopped_early: bool = False
    last_val: dict[str, float] = field(default_factory=dict)  # latest val/* metrics

    def to_dict(self) -> dict[str, Any]:
        """Checkpoint form, its ``loop`` entry (numbers, strings and dicts only)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> LoopState:
        """The state to continue from after `checkpoint`'s epoch.

        An early stop is not carried over: continuing a run means training on.

        Raises:
            TrainingError: the checkpoint's loop state records no epoch.
        """
        loop = checkpoint["loop"]
        if "epoch" not in loop:
            raise TrainingError(
                f"the checkpoint's loop state has no epoch (keys {sorted(loop)}); it was not "
                "written by this version of floodlab. Resume from a newer checkpoint."
            )
        state = cls(**{k: v for k, v in loop.items() if k in cls.__dataclass_fields__})
        state.epoch, state.global_step = int(state.epoch), int(state.global_step)
        state.stopped_early = False
        return state


def checkpoint_state(
    task: Task,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, EpochLR],
    scaler: torch.amp.GradScaler,
    state: LoopState,
    spec: ExperimentSpec,
    record: dict[str, Any],
    averaging: WeightAverage | None = None,
) -> Checkpoint:
    """Everything needed to continue at the next epoch (see floodlab.tracking.checkpoint).

    With a weight average, ``task`` holds the averaged weights (the ones validated and
    used) and ``training`` the weights being trained.
    """
    checkpoint = Checkpoint(
        task=averaging.state_dict() if averaging is not None else task.state_dict(),
        optimizers={k: o.state_dict() for k, o in optimizers.items()},
        schedulers={k: s.state_dict() for k, s in schedulers.items()},
        scaler=scaler.state_dict() if scaler.is_enabled() else {},
        spec_hash=spec_hash(spec),
        metrics={k: v for k, v in record.items() if isinstance(v, int | float)},
        loop=state.to_dict(),
    )
    if averaging is not None:
        checkpoint["training"] = averaging.training_state_dict()
    return checkpoint


def restore(
    checkpoint: Checkpoint,
    task: Task,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, EpochLR],
    scaler: torch.amp.GradScaler,
) -> LoopState:
    """Load weights, optimiser/schedule/scaler state; return the loop state to continue from.

    The weights are the trained ones (``training``) when the checkpoint holds an average
    in ``task``; `floodlab.train.averaging.WeightAverage` loads the average.
    """
    task.load_state_dict(checkpoint.get("training", checkpoint["task"]))
    missing = sorted(set(optimizers) - set(checkpoint["optimizers"]))
    if missing:
        raise TrainingError(
            f"the checkpoint has no state for optimiser(s) {missing}; it was written by "
            "another model family. Resume from a run of the same spec."
        )
    for name, opt in optimizers.items():
        opt.load_state_dict(checkpoint["optimizers"][name])
    for name, sched in schedulers.items():
        if name in checkpoint["schedulers"]:
            sched.load_state_dict(checkpoint["schedulers"][name])
    if scaler.is_enabled() and checkpoint["scaler"]:
        scaler.load_state_dict(checkpoint["scaler"])
    return LoopState.from_checkpoint(checkpoint)
