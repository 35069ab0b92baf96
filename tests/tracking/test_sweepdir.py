"""Sweep directories: a new sweep is its experiment's latest, beside (not instead of) the runs'."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from floodlab.errors import FloodlabError
from floodlab.specs import load_spec
from floodlab.tracking import RunDir
from floodlab.tracking.checkpoint import Checkpoint, write_checkpoint
from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name
from floodlab.tracking.sweepdir import SweepDir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spec():
    return load_spec(ROOT / "experiments" / "sweep_flora.yaml")


def _checkpoint() -> Checkpoint:
    return Checkpoint(
        task={"model": {"w": torch.zeros(2)}},
        optimizers={},
        schedulers={},
        scaler={},
        spec_hash="abc",
        metrics={},
        loop={"epoch": 1},
    )


def test_a_new_sweep_is_latest_at_once_and_the_runs_latest_stays(tmp_path, spec):
    run = RunDir.create(tmp_path, spec.name, "r1", spec=spec)
    write_checkpoint(run.checkpoints_dir / checkpoint_dir_name(1), _checkpoint(), {"epoch": 1})
    assert run.mark_latest()

    first = SweepDir.create(tmp_path, spec.name, spec)
    assert first.name.startswith("sweep-") and first.read_spec() == spec
    assert SweepDir.open(f"{spec.name}/latest", tmp_path) == first
    second = SweepDir.create(tmp_path, spec.name, spec)  # even within the same second
    assert second.name != first.name
    assert SweepDir.open(spec.name, tmp_path) == second
    assert SweepDir.open(f"{spec.name}/{first.name}", tmp_path) == first
    assert SweepDir.open(first.path) == first
    # Runs and sweeps keep separate links in the same experiment folder.
    assert RunDir.open(f"{spec.name}/latest", root=tmp_path) == run
    assert SweepDir.open(f"{spec.name}/latest", tmp_path) != RunDir.open(spec.name, root=tmp_path)


def test_latest_is_the_link_not_the_newest_name(tmp_path, spec):
    older = SweepDir.create(tmp_path, spec.name, spec)
    newer = SweepDir.create(tmp_path, spec.name, spec)
    assert older.mark_latest()  # e.g. a sweep made latest again by hand
    assert SweepDir.open(f"{spec.name}/latest", tmp_path) == older
    assert SweepDir.in_experiment(older.path.parent) == [older.name, newer.name]


def test_trial_runs_tune_state_and_link_names(tmp_path, spec):
    sweep = SweepDir.create(tmp_path, spec.name, spec)
    assert sweep.trial("abc_00001") == RunDir(sweep.path / "trials" / "abc_00001")
    assert not sweep.has_tune_state()
    sweep.tune_dir.mkdir()
    (sweep.tune_dir / "tuner.pkl").write_bytes(b"state")
    assert sweep.has_tune_state()
    for reserved in ("latest", SweepDir.LINK):
        with pytest.raises(FloodlabError, match="must not be"):
            RunDir.create(tmp_path, spec.name, reserved)


def test_unknown_sweep_lists_the_sweeps_found(tmp_path, spec):
    sweep = SweepDir.create(tmp_path, spec.name, spec)
    with pytest.raises(FloodlabError, match=rf"sweep-nope.*{sweep.name}"):
        SweepDir.open(f"{spec.name}/sweep-nope", tmp_path)
    with pytest.raises(FloodlabError, match="no sweeps under"):
        SweepDir.open("other/latest", tmp_path)
