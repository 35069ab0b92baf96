"""Rank 0's place within an epoch, for the driver's batch progress bar.

Rank 0 wraps its training loader in a `ProgressLoader`, which rewrites the run's small
``progress.json`` (atomically) as batches go by: at the start of an epoch, at most every
`every_s` seconds, and when the epoch's training batches are done (then the phase is
``validate``). The driver reads it with `read_progress` beside metrics.jsonl, so the
channel costs one tiny file write per half second and needs no Ray API. No torch here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from floodlab.io import read_json_object, write_json

TRAIN, VALIDATE = "train", "validate"


@dataclass(frozen=True)
class BatchProgress:
    """Where rank 0 is: `done` of `total` training batches of `epoch`, in `phase`."""

    epoch: int
    done: int
    total: int | None
    phase: str = TRAIN


def read_progress(path: str | Path) -> BatchProgress | None:
    """The progress rank 0 last wrote (None before the first write, or when unreadable)."""
    try:
        data = read_json_object(path)
        return BatchProgress(**data) if data else None
    except (ValueError, TypeError):  # a file from another version: no bar rather than a crash
        return None


class ProgressLoader:
    """Iterates `loader` and records rank 0's progress through each epoch in `path`.

    Args:
        loader: the training batches (one pass per epoch).
        path: the run's progress file.
        first_epoch: the epoch of the first pass (a resumed run starts after its checkpoint).
        limit: at most this many batches are used per epoch (``trainer.limit_train_batches``).
        every_s: write at most this often in seconds within an epoch.
    """

    def __init__(
        self,
        loader: Iterable[Any],
        path: str | Path,
        *,
        first_epoch: int = 1,
        limit: int | None = None,
        every_s: float = 0.5,
    ):
        self.loader, self.path = loader, Path(path)
        self.epoch = first_epoch - 1
        self.limit, self.every_s = limit, every_s

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def total(self) -> int | None:
        """Training batches per epoch, if the loader knows its length."""
        try:
            n = len(self.loader)  # type: ignore[arg-type]
        except TypeError:
            return self.limit
        return n if self.limit is None else min(n, self.limit)

    def _write(self, done: int, total: int | None, phase: str) -> None:
        write_json(self.path, asdict(BatchProgress(self.epoch, done, total, phase)))

    def __iter__(self) -> Iterator[Any]:
        self.epoch += 1
        total = self.total()
        done = 0
        self._write(0, total, TRAIN)
        last = time.monotonic()
        try:
            for batch in self.loader:
                yield batch  # the loop trains on it and comes back for the next one
                done += 1
                if total is not None and done >= total:
                    continue  # the last one is written once the loop stops asking
                if time.monotonic() - last >= self.every_s:
                    self._write(done, total, TRAIN)
                    last = time.monotonic()
        finally:
            # The loop stopped asking (its batch limit, or the end of the loader).
            self._write(done if total is None else min(done, total), total, VALIDATE)
