"""Fixtures of the data tests: training one epoch on a converted store, without Ray, and
mapping a scene with the result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Train a tiny ResUNet for one epoch on `store` (of dataset `name`); returns the epoch record
# and the run folder it leaves under `runs` (spec, normalisation, the epoch's checkpoint).
TrainOneEpoch = Callable[[Path, str, Path], tuple[dict[str, Any], Path]]


def train_one_epoch(store: Path, dataset: str, runs: Path) -> tuple[dict[str, Any], Path]:
    """One epoch of floodlab's pure-torch loop on a store's train split, validated on val,
    saved as a run that `floodlab predict` can use."""
    import torch
    from torch.utils.data import DataLoader

    from floodlab.data.load.dataset import FloodDataset
    from floodlab.specs import load_spec
    from floodlab.tasks import build_task
    from floodlab.tracking import RunDir
    from floodlab.tracking.checkpoint import Checkpoint, write_checkpoint
    from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name
    from floodlab.train.loop import fit
    from floodlab.train.state import LoopState

    spec = load_spec(
        ROOT / "experiments" / "resunet_sen1floods11.yaml",
        [
            f"data.dataset={dataset}",
            f"data.store={store}",
            "data.label_sources=[hand]",
            "data.patch_size=32",
            "data.loader_workers=0",
            "model.widths=[8,16]",
            "model.se_reduction=4",
            "trainer.epochs=1",
            "trainer.batch_size=2",
            f"logging.root={runs}",
        ],
    )
    records: list[dict[str, Any]] = []

    class Keep:
        def on_step(self, *args: Any) -> None:
            pass

        def on_epoch_end(self, state: Any, record: dict[str, Any], **kwargs: Any) -> None:
            records.append(record)

    torch.manual_seed(0)
    train = FloodDataset(spec.data, "train", train=True, seed=0)
    val = FloodDataset(spec.data, "val", train=False)
    task = build_task(spec)
    fit(
        task,
        spec,
        DataLoader(train, batch_size=2, shuffle=True),
        DataLoader(val, batch_size=2),
        hooks=Keep(),
    )
    assert len(records) == 1
    run = RunDir.create(runs, spec.name, "one-epoch", spec=spec)
    run.write_normalization(train.norm)
    state = Checkpoint(
        task=task.state_dict(),
        optimizers={},
        schedulers={},
        scaler={},
        spec_hash=run.spec_hash() or "",
        metrics=records[0],
        loop=LoopState(epoch=1).to_dict(),
    )
    write_checkpoint(
        run.checkpoints_dir / checkpoint_dir_name(1), state, {"epoch": 1, "score": 0.0}
    )
    return records[0], run.path


def predict_scene(run: Path, scenes: list[Path], out: Path, *args: str) -> Any:
    """`floodlab predict RUN SCENES -o OUT`; returns (the map's CRS, transform, mask band)
    after checking that it succeeded."""
    import numpy as np
    import rasterio
    from click.testing import CliRunner

    from floodlab.cli import main

    argv = ["predict", str(run), *map(str, scenes), "-o", str(out), "--window", "32"]
    result = CliRunner().invoke(main, [*argv, "--overlap", "8", *args])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as f:
        mask = f.read(2)
        assert set(np.unique(mask)) <= {0.0, 1.0, 255.0}
        return f.crs, f.transform, mask


@pytest.fixture(scope="session")
def predict() -> Callable[..., Any]:
    """`predict_scene`."""
    return predict_scene


@pytest.fixture(scope="session")
def one_epoch() -> TrainOneEpoch:
    """`train_one_epoch`, for tests of any scope."""
    return train_one_epoch
