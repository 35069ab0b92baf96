"""Rank 0's batch progress (progress.json) and the driver's follower of a run's files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from floodlab.io import write_json
from floodlab.tracking.rundir import RunDir
from floodlab.train.driver import _MetricsFollower
from floodlab.train.progress import (
    TRAIN,
    VALIDATE,
    BatchProgress,
    ProgressLoader,
    read_progress,
)


def seen_during(loader: ProgressLoader, path: Path, limit: int | None = None) -> list[Any]:
    """Iterate like the training loop (which fetches one batch past its limit and breaks),
    reading the progress file as each batch arrives."""
    seen = []
    for i, _batch in enumerate(loader):
        if limit is not None and i >= limit:
            break
        seen.append(read_progress(path))
    return seen


def test_progress_counts_batches_and_ends_in_validation(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    loader = ProgressLoader(list(range(5)), path, every_s=0.0)
    seen = seen_during(loader, path)
    # Before the first batch: 0 done; each later batch arrives after the previous was counted.
    assert seen == [BatchProgress(1, i, 5, TRAIN) for i in range(5)]
    assert read_progress(path) == BatchProgress(1, 5, 5, VALIDATE)
    assert json.loads(path.read_text()) == {
        "epoch": 1,
        "done": 5,
        "total": 5,
        "phase": "validate",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]  # written atomically


def test_epochs_count_on_from_the_first_epoch(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    loader = ProgressLoader(list(range(3)), path, first_epoch=4, every_s=0.0)
    assert len(loader) == 3
    for epoch in (4, 5):
        seen = seen_during(loader, path)
        assert seen[0] == BatchProgress(epoch, 0, 3, TRAIN)
        assert read_progress(path) == BatchProgress(epoch, 3, 3, VALIDATE)


def test_the_batch_limit_is_the_total(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    loader = ProgressLoader(list(range(10)), path, limit=3, every_s=0.0)
    assert loader.total() == 3
    seen = seen_during(loader, path, limit=3)
    assert [p.done for p in seen] == [0, 1, 2]
    assert read_progress(path) == BatchProgress(1, 3, 3, VALIDATE)
    # A consumer that reads past the limit never shows more than the total.
    seen = seen_during(loader, path)
    assert all(p.done <= 3 for p in seen)
    assert read_progress(path) == BatchProgress(2, 3, 3, VALIDATE)


def test_a_loader_without_length_counts_up_to_its_limit_or_unknown(tmp_path: Path) -> None:
    def stream() -> Iterator[int]:
        yield from range(4)

    path = tmp_path / "progress.json"
    unknown = ProgressLoader(stream(), path, every_s=0.0)
    assert unknown.total() is None
    seen_during(unknown, path)
    assert read_progress(path) == BatchProgress(1, 4, None, VALIDATE)
    limited = ProgressLoader(stream(), path, limit=2, every_s=0.0)
    seen_during(limited, path, limit=2)
    assert read_progress(path) == BatchProgress(1, 2, 2, VALIDATE)


def test_writes_within_an_epoch_are_throttled(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    loader = ProgressLoader(list(range(6)), path, every_s=3600.0)
    seen = seen_during(loader, path)
    assert {p.done for p in seen} == {0}  # only the epoch's start, then its end
    assert read_progress(path) == BatchProgress(1, 6, 6, VALIDATE)


def test_read_progress_is_none_before_the_first_write_or_for_foreign_files(
    tmp_path: Path,
) -> None:
    path = tmp_path / "progress.json"
    assert read_progress(path) is None
    path.write_text('{"epoch": 1, "done": 2}')  # another version's fields
    assert read_progress(path) is None
    path.write_text("[1, 2]")
    assert read_progress(path) is None
    path.write_text("{not json")
    assert read_progress(path) is None


def test_the_follower_reports_new_records_and_progress_changes(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    records: list[dict[str, Any]] = []
    batches: list[BatchProgress] = []
    follower = _MetricsFollower(run, records.append, skip=0, batch_progress=batches.append)

    follower.poll()
    assert records == [] and batches == []
    write_json(run.progress_path, asdict(BatchProgress(1, 1, 4, TRAIN)))
    follower.poll()
    follower.poll()  # unchanged: not reported twice
    assert batches == [BatchProgress(1, 1, 4, TRAIN)]

    run.append_metrics({"epoch": 1, "train/loss": 0.5})
    write_json(run.progress_path, asdict(BatchProgress(1, 4, 4, VALIDATE)))
    follower.poll()
    assert [r["epoch"] for r in records] == [1]
    assert batches[-1] == BatchProgress(1, 4, 4, VALIDATE)

    # A restart truncates records it re-runs: they are reported again as rewritten.
    run.append_metrics({"epoch": 2, "train/loss": 0.4})
    follower.poll()
    run.truncate_metrics(after_epoch=1)
    follower.poll()
    run.append_metrics({"epoch": 2, "train/loss": 0.3})
    follower.poll()
    assert [(r["epoch"], r["train/loss"]) for r in records] == [(1, 0.5), (2, 0.4), (2, 0.3)]


def test_the_follower_skips_old_records_and_delivers_the_rest_when_stopped(
    tmp_path: Path,
) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.append_metrics({"epoch": 1})  # before a --resume: not news
    records: list[dict[str, Any]] = []
    follower = _MetricsFollower(run, records.append, skip=1)
    follower.start()
    run.append_metrics({"epoch": 2})
    run.append_metrics({"epoch": 3})
    follower.stop()  # joins the thread, then polls once more
    assert [r["epoch"] for r in records] == [2, 3]
    assert not follower.is_alive()
