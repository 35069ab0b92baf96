"""Runs written without training or Ray, for the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from floodlab.data.load.dataset import FloodDataset
from floodlab.specs import ExperimentSpec
from floodlab.tasks import build_task
from floodlab.tracking import RunDir
from floodlab.tracking.checkpoint import Checkpoint, write_checkpoint
from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name
from floodlab.train.state import LoopState

WriteRun = Callable[[Path, ExperimentSpec], RunDir]


def write_untrained_run(root: Path, spec: ExperimentSpec) -> RunDir:
    """A run as training leaves it (spec, normalisation of its training split, one
    checkpoint), without training: the seeded initial weights are what is evaluated."""
    run = RunDir.create(root, spec.name, "r", spec=spec)
    run.write_normalization(FloodDataset(spec.data, spec.data.train_split, train=True).norm)
    torch.manual_seed(0)
    task = build_task(spec)
    state = Checkpoint(
        task=task.state_dict(),
        optimizers={},
        schedulers={},
        scaler={},
        spec_hash=run.spec_hash() or "",
        metrics={},
        loop=LoopState(epoch=1).to_dict(),
    )
    write_checkpoint(
        run.checkpoints_dir / checkpoint_dir_name(1), state, {"epoch": 1, "score": 0.0}
    )
    return run


@pytest.fixture(scope="session")
def untrained_run() -> WriteRun:
    """`write_untrained_run`, for tests and fixtures of any scope."""
    return write_untrained_run
