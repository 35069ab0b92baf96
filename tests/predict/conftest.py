"""Runs of the tiny ResUNet written without training or Ray, for the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from floodlab.specs import load_spec
from floodlab.tracking import RunDir

WriteRun = Callable[..., RunDir]  # (root, spec[, normalization]) -> run
ROOT = Path(__file__).resolve().parents[2]
# The Sen1Floods11 ResUNet shrunk for tests: 32 px patches (the tiny store's chips are 64 px).
TINY_RESUNET = ["data.patch_size=32", "data.loader_workers=0", "model.widths=[8,16]",
                "model.se_reduction=4"]  # fmt: skip


@pytest.fixture(scope="session")
def untrained_resunet(untrained_run: WriteRun) -> Callable[..., RunDir]:
    """(runs folder, store, *overrides) -> an untrained run (`untrained_run`) of the tiny
    ResUNet (`TINY_RESUNET`) on `store`."""

    def write(root: Path, store: Path, *overrides: str) -> RunDir:
        spec = load_spec(
            ROOT / "experiments" / "resunet_sen1floods11.yaml",
            [f"data.store={store}", *TINY_RESUNET, *overrides],
        )
        return untrained_run(root, spec)

    return write
