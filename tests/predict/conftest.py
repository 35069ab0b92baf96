"""Runs written without training or Ray, for the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from floodlab.data.load.dataset import FloodDataset
from floodlab.specs import ExperimentSpec, load_spec, with_values
from floodlab.tasks import build_task
from floodlab.tracking import RunDir
from floodlab.tracking.checkpoint import Checkpoint, write_checkpoint
from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name
from floodlab.train.state import LoopState

WriteRun = Callable[..., RunDir]  # (root, spec[, normalization]) -> run
ROOT = Path(__file__).resolve().parents[2]
# The Sen1Floods11 ResUNet shrunk for tests: 32 px patches (the tiny store's chips are 64 px).
TINY_RESUNET = ["data.patch_size=32", "data.loader_workers=0", "model.widths=[8,16]",
                "model.se_reduction=4"]  # fmt: skip


def write_untrained_run(
    root: Path, spec: ExperimentSpec, normalization: dict[str, Any] | None = None
) -> RunDir:
    """A run as training leaves it (spec, normalisation of its training split, one
    checkpoint), without training: the seeded initial weights are what is evaluated.

    `normalization` stands in for the training split's parameters, so a run needs no store.
    """
    run = RunDir.create(root, spec.name, "r", spec=spec)
    if normalization is None:
        normalization = FloodDataset(spec.data, spec.data.train_split, train=True).norm
    run.write_normalization(normalization)
    torch.manual_seed(0)
    # A SAR-KD student's teacher is a training-time input, outside its checkpoint.
    task = build_task(with_values(spec, {"distill": None}) if spec.distill else spec)
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


def write_untrained_resunet(root: Path, store: Path, *overrides: str) -> RunDir:
    """`write_untrained_run` of the tiny ResUNet (`TINY_RESUNET`) on `store`."""
    spec = load_spec(
        ROOT / "experiments" / "resunet_sen1floods11.yaml",
        [f"data.store={store}", *TINY_RESUNET, *overrides],
    )
    return write_untrained_run(root, spec)


@pytest.fixture(scope="session")
def untrained_resunet() -> Callable[..., RunDir]:
    """`write_untrained_resunet`: (runs folder, store, *overrides) -> run."""
    return write_untrained_resunet
