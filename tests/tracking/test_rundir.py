"""Run directories: naming, lookup, metrics, summaries, checkpoint ranking, atomic writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from floodlab.errors import FloodlabError, TrainingError
from floodlab.specs import load_spec, spec_hash
from floodlab.tracking import RunDir
from floodlab.tracking.checkpoint import (
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_checkpoint,
    write_meta,
)
from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spec():
    return load_spec(ROOT / "experiments" / "quickstart.yaml")


def _state(epoch: int) -> Checkpoint:
    return Checkpoint(
        task={"model": {"w": torch.full((2,), float(epoch))}},
        optimizers={},
        schedulers={},
        scaler={},
        spec_hash="abc",
        metrics={"val/iou": 0.1 * epoch},
        loop={"epoch": epoch, "best_metric": None},
    )


def test_create_names_runs_and_latest_is_the_run_with_a_checkpoint(tmp_path, spec):
    run = RunDir.create(tmp_path, "quickstart", spec=spec)
    assert re.fullmatch(rf"\d{{8}}-\d{{6}}-{spec_hash(spec)[:6]}", run.name)
    assert run.path == tmp_path / "quickstart" / run.name
    assert run.read_spec() == spec and run.spec_hash() == spec_hash(spec)
    second = RunDir.create(tmp_path, "quickstart", spec=spec)  # same second, same hash
    assert second.name != run.name
    # `latest` is a run that can be used: none before a checkpoint exists.
    with pytest.raises(FloodlabError, match="not found"):
        RunDir.open("quickstart/latest", root=tmp_path)
    assert not second.mark_latest()
    write_checkpoint(second.checkpoints_dir / checkpoint_dir_name(1), _state(1), {"epoch": 1})
    assert second.mark_latest()
    assert RunDir.open("quickstart/latest", root=tmp_path) == second
    assert RunDir.open("quickstart", root=tmp_path) == second
    assert RunDir.open(f"quickstart/{run.name}", root=tmp_path) == run
    assert RunDir.open(run.path) == run


def test_open_unknown_run_lists_available_runs(tmp_path, spec):
    run = RunDir.create(tmp_path, "quickstart", "r1", spec=spec)
    with pytest.raises(FloodlabError, match=rf"'quickstart/nope': not found.*{run.experiment}/r1"):
        RunDir.open("quickstart/nope", root=tmp_path)
    with pytest.raises(FloodlabError, match="no runs under"):
        RunDir.open("x/latest", root=tmp_path / "empty")


def test_roots_of_unknown_protocols_get_a_clear_error(tmp_path):
    with pytest.raises(FloodlabError, match=r"logging\.root.*fsspec does not know"):
        RunDir.create("nosuch://bucket/runs", "quickstart")


def test_metrics_append_read_and_truncate(tmp_path):
    run = RunDir.create(tmp_path, "e", "r")
    for epoch in (1, 2, 3):
        run.append_metrics({"epoch": epoch, "val/iou": 0.5, "train/loss": float("nan")})
    records = run.read_metrics()
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[0]["train/loss"] is None  # strict JSON, no NaN tokens
    run.truncate_metrics(after_epoch=1)
    assert [r["epoch"] for r in run.read_metrics()] == [1]
    # A torn last line (a crash mid-write) is skipped, not fatal.
    with open(run.metrics_path, "a") as f:
        f.write('{"epoch": 2, "val/io')
    assert [r["epoch"] for r in run.read_metrics()] == [1]
    # The restart that re-runs epoch 2 clears it first, so its record is not swallowed.
    run.truncate_metrics(after_epoch=1)
    run.append_metrics({"epoch": 2, "val/iou": 0.6})
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]


def test_summary_round_trip_and_no_temp_files(tmp_path):
    run = RunDir.create(tmp_path, "e", "r")
    assert run.read_summary() == {}
    run.write_summary({"status": "completed", "best": {"value": 0.7}})
    assert run.read_summary()["best"]["value"] == 0.7
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]


def test_best_and_latest_checkpoint_follow_scores(tmp_path):
    run = RunDir.create(tmp_path, "e", "r")
    with pytest.raises(FloodlabError, match="no checkpoint"):
        run.best_checkpoint()
    assert run.latest_checkpoint() is None
    for epoch, score in ((1, 0.3), (2, 0.9), (3, 0.5)):
        d = run.checkpoints_dir / checkpoint_dir_name(epoch)
        save_checkpoint(d / "checkpoint.pt", _state(epoch))
        write_meta(d, {"epoch": epoch, "metric": "val/iou", "mode": "max", "score": score})
    # An incomplete directory (no checkpoint file) is ignored.
    (run.checkpoints_dir / checkpoint_dir_name(4)).mkdir()
    assert run.best_checkpoint().parent.name == "epoch_0002"
    assert run.latest_checkpoint().parent.name == "epoch_0003"
    assert load_checkpoint(run.best_checkpoint())["loop"]["epoch"] == 2


@pytest.mark.parametrize(
    ("mode", "scores", "kept"),
    [
        ("max", (0.3, 0.9, 0.5, 0.4), {2, 3, 4}),  # the two best and the latest
        ("min", (0.3, 0.9, 0.5, 0.4), {1, 4}),  # the latest is among the best two
        ("max", (float("nan"), 0.2, None, 0.1), {2, 4}),  # unscored rank last
    ],
)
def test_pruning_keeps_the_best_and_the_latest_checkpoint(tmp_path, mode, scores, kept):
    run = RunDir.create(tmp_path, "e", "r")
    for epoch, score in enumerate(scores, start=1):
        meta = {"epoch": epoch, "metric": "val/iou", "mode": mode, "score": score}
        write_checkpoint(run.checkpoints_dir / checkpoint_dir_name(epoch), _state(epoch), meta)
    gone = run.prune_checkpoints(2)
    assert {c["epoch"] for c in run.checkpoints()} == kept
    assert len(gone) == len(scores) - len(kept)
    # Nothing of a deleted checkpoint stays behind.
    assert sorted(p.name for p in run.checkpoints_dir.iterdir()) == [
        checkpoint_dir_name(e) for e in sorted(kept)
    ]


def test_only_complete_checkpoints_count(tmp_path):
    run = RunDir.create(tmp_path, "e", "r")
    write_checkpoint(run.checkpoints_dir / checkpoint_dir_name(1), _state(1), {"epoch": 1})
    write_checkpoint(run.checkpoints_dir / checkpoint_dir_name(2), _state(2), {"epoch": 2})
    assert not [p for p in run.checkpoints_dir.iterdir() if p.name.startswith(".")]
    # A torn copy: the file is shorter than its metadata says.
    torn = run.checkpoints_dir / checkpoint_dir_name(3)
    write_checkpoint(torn, _state(3), {"epoch": 3})
    data = (torn / "checkpoint.pt").read_bytes()
    (torn / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    # A file without its metadata (the crash came before meta.json was written).
    bare = run.checkpoints_dir / checkpoint_dir_name(4)
    save_checkpoint(bare / "checkpoint.pt", _state(4))
    # A temporary directory of a write in progress.
    (run.checkpoints_dir / ".epoch_0005.tmp-abcd").mkdir()
    assert [c["epoch"] for c in run.checkpoints()] == [1, 2]
    assert run.latest_checkpoint() == run.checkpoints_dir / "epoch_0002" / "checkpoint.pt"
    # Re-writing an epoch replaces it whole.
    write_checkpoint(torn, _state(3), {"epoch": 3})
    assert [c["epoch"] for c in run.checkpoints()] == [1, 2, 3]
    assert load_checkpoint(run.latest_checkpoint())["loop"]["epoch"] == 3


def test_resume_choice_takes_the_newest_checkpoint_that_loads(tmp_path):
    from floodlab.train.worker import resume_choice

    run = RunDir.create(tmp_path, "e", "r")
    assert resume_choice(run, None) is None
    for epoch in (2, 4):
        write_checkpoint(run.checkpoints_dir / checkpoint_dir_name(epoch), _state(epoch), {})
    path, state = resume_choice(run, None)
    assert Path(path).parent.name == "epoch_0004" and state["loop"]["epoch"] == 4
    # Complete by its size, yet unreadable: the next older one is used.
    newest = run.checkpoints_dir / "epoch_0004" / "checkpoint.pt"
    newest.write_bytes(b"x" * newest.stat().st_size)
    path, state = resume_choice(run, None)
    assert Path(path).parent.name == "epoch_0002" and state["loop"]["epoch"] == 2


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(tmp_path / "x.pt", {"task": {}})
    with pytest.raises(TrainingError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="cannot load"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="not a floodlab checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_normalization_written_as_json(tmp_path):
    run = RunDir.create(tmp_path, "e", "r")
    run.write_normalization({"mode": "zscore", "bands": {"VV": {"scale": 0.2}}})
    assert json.loads(run.normalization_path.read_text())["mode"] == "zscore"
