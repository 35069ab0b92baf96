"""Tiny FLoRA sweep specs over the session's synthetic Sen1Floods11 store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from floodlab.specs import ExperimentSpec, load_spec

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

# Small enough that a trial is dominated by Ray Train's start-up, not by training.
TINY = [
    "data.synthetic=null",
    "data.patch_size=32",
    "data.augment={flips: false, rot90: false}",
    "model.widths=[8, 16]",
    "model.fusion={window: 2, heads: 1, scales: 2}",
    "trainer.epochs=2",
    "trainer.batch_size=4",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.keep_checkpoints=1",
    "trainer.num_workers=1",
    "trainer.cpus_per_worker=1",
    "logging.image_every=0",
    "tune.max_concurrent=2",
]


@pytest.fixture
def sweep_spec(tiny_s1f11_store: Path, tmp_path: Path) -> Callable[..., ExperimentSpec]:
    """Build a tiny sweep spec from an experiments/ sweep plus overrides; runs go to tmp."""

    def make(base: str = "sweep_flora.yaml", *overrides: str) -> ExperimentSpec:
        return load_spec(
            EXPERIMENTS / base,
            [
                f"data.store={tiny_s1f11_store}",
                f"logging.root={tmp_path / 'runs'}",
                *TINY,
                *overrides,
            ],
        )

    return make


def space(params: dict[str, Any]) -> str:
    """A `--set tune.space=...` override from a dict."""
    return "tune.space=" + yaml.safe_dump(params, default_flow_style=True).strip()
