"""The run-directory layout: resolved spec, metrics, summary, checkpoints, TensorBoard events.

One run lives in ``<root>/<experiment>/<run>/``::

    spec.yaml            the resolved spec (all defaults filled in)
    spec_hash            its 12-hex-digit hash
    metrics.jsonl        one JSON record per epoch: epoch, train/..., val/..., lr, time
    summary.json         status, best metric/epoch/checkpoint, final metrics, spec hash
    normalization.json   the normalisation parameters the model was trained with
    curves.png           losses and validation metrics per epoch (redrawn after every epoch)
    progress.json        rank 0's place in the current epoch (batches done of total)
    mlflow.json          the run's MLflow run, when logging.mlflow is on
    checkpoints/         epoch_0003/{checkpoint.pt, meta.json}, ... (managed by Ray Train)
    tensorboard/         TensorBoard event files (scalars, image panels, HParams)
    workers/             rank<r>.json: which process/host/device ran each rank
    eval/<split>/        `floodlab evaluate` reports

``<root>/<experiment>/latest`` points at the run that most recently wrote its first
checkpoint (`RunDir.mark_latest`; the link mechanism is `floodlab.tracking.folder`, shared
with sweeps): a run that failed before any checkpoint stays listed, with ``status: failed``
and the reason in its summary, but never becomes ``latest``. This module imports no torch,
so any part of floodlab (and `floodlab validate`) may use it cheaply.

With the root on object storage (``logging.root: s3://bucket/runs``) the layout is the same
at the run's URL; the run is written and read through a local working copy
(`floodlab.tracking.home`), except its checkpoints, which live only at the URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floodlab.errors import FloodlabError
from floodlab.io import atomic_write_text, json_safe, read_json_object, write_json
from floodlab.storage import Location, join
from floodlab.tracking.checkpoint_dirs import (
    CHECKPOINT_META,
    best_of,
    complete_checkpoints,
    ranked,
    remote_checkpoints,
)
from floodlab.tracking.folder import LATEST, ExperimentFolder, Subpath, _child, check_root

if TYPE_CHECKING:
    from floodlab.specs import ExperimentSpec

HASH_FILE = "spec_hash"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
NORMALIZATION_FILE = "normalization.json"
CURVES_FILE = "curves.png"
PROGRESS_FILE = "progress.json"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
WORKERS_DIR = "workers"
EVAL_DIR = "eval"


class RunDir(ExperimentFolder):
    """One run directory and the files in it.

    Attributes:
        path: the run directory, ``<root>/<experiment>/<name>``.
        name: the run name.
        experiment: the experiment name (the parent folder).
    """

    LINK = LATEST
    KIND = "run"
    REMOTE_ONLY = (CHECKPOINTS_DIR,)

    # -- creation and lookup ----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | Path,
        experiment: str,
        name: str | None = None,
        *,
        spec: ExperimentSpec | None = None,
    ) -> RunDir:
        """Create (or reuse, when `name` exists) a run directory.

        The run becomes the experiment's ``latest`` only once it holds a checkpoint
        (`mark_latest`).

        Args:
            root: the runs root (``logging.root``).
            experiment: the experiment name.
            name: the run name; default ``YYYYmmdd-HHMMSS-<spechash[:6]>`` (random hex
                without a spec). A sweep names trial runs by trial id so a resumed sweep
                finds them again.
            spec: when given, written into the run with its hash.
        """
        tag = _hash_of(spec)[:6] if spec is not None else secrets.token_hex(3)
        run = cls.make(root, experiment, name, f"{time.strftime('%Y%m%d-%H%M%S')}-{tag}")
        if spec is not None:
            run.write_spec(spec)
        return run

    def ready(self) -> bool:
        """A run may become ``<experiment>/latest`` (`mark_latest`) once it holds a complete
        checkpoint."""
        return bool(self.checkpoints())

    @classmethod
    def open(cls, ref: str | Path, root: str | Path = "runs") -> RunDir:
        """Find an existing run.

        Args:
            ref: a run directory path, ``<experiment>/<run>``, ``<experiment>/latest`` or
                just ``<experiment>`` (its latest run).
            root: the runs root searched for ``<experiment>/...`` references.

        Raises:
            FloodlabError: when nothing matches; the message lists the available runs.
        """
        found = cls.find(ref, root)
        if found is not None:
            return found
        available = list_runs(root)
        shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
        where = str(root).rstrip("/")
        listing = (
            f"available runs under {where}/: {shown}" if available else f"no runs under {where}/"
        )
        raise FloodlabError(
            f"run {str(ref)!r}: not found (give a run directory, <experiment>/<run> or "
            f"<experiment>/latest); {listing}. Train one with `floodlab train <spec>`."
        )

    # -- paths --------------------------------------------------------------------------------
    metrics_path = Subpath(METRICS_FILE, "``metrics.jsonl``: one record per epoch.")
    summary_path = Subpath(SUMMARY_FILE, "``summary.json``.")
    normalization_path = Subpath(NORMALIZATION_FILE, "``normalization.json``.")
    curves_path = Subpath(CURVES_FILE, "``curves.png``: train and validation curves per epoch.")
    progress_path = Subpath(PROGRESS_FILE, "``progress.json``: batches done in this epoch.")
    tensorboard_dir = Subpath(TENSORBOARD_DIR, "TensorBoard event directory.")
    checkpoints_dir = Subpath(
        CHECKPOINTS_DIR, "Where checkpoint directories live (Ray Train's storage for this run)."
    )
    workers_dir = Subpath(WORKERS_DIR, "Per-rank process records.")

    def eval_dir(
        self,
        split: str,
        store: str | Path | None = None,
        tta: str = "none",
        threshold: float | str = 0.5,
    ) -> Path:
        """Where `floodlab evaluate` writes the reports of one split.

        Plain and varied evaluations of the same split sit side by side: each variation
        adds to the folder's name.

        Args:
            split: the evaluated split.
            store: another store than the run's own, if evaluated on one: its reports go
                to ``eval/<split>-on-<store name>/`` so they never replace the run's own.
            tta: the test-time augmentation (`floodlab.predict.tta`); other than "none":
                ``-tta-<mode>``.
            threshold: the model's threshold; other than 0.5: ``-threshold-<value>``, or
                ``-threshold-<split>`` when chosen on a split (`floodlab.predict.threshold`).
        """
        name = split
        if store is not None:
            name += "-on-" + Path(str(store).rstrip("/")).name.removesuffix(".zarr")
        if tta != "none":
            name += f"-tta-{tta}"
        if isinstance(threshold, str):
            name += f"-threshold-{threshold}"
        elif threshold != 0.5:
            name += f"-threshold-{threshold:g}"
        return self.path / EVAL_DIR / name

    # -- spec -----------------------------------------------------------------------------------
    def write_spec(self, spec: ExperimentSpec) -> None:
        """Write the resolved spec and its hash."""
        from floodlab.specs import dump_spec

        atomic_write_text(self.spec_path, dump_spec(spec))
        atomic_write_text(self.path / HASH_FILE, _hash_of(spec) + "\n")

    def spec_hash(self) -> str | None:
        """The recorded spec hash, if any."""
        p = self.path / HASH_FILE
        return p.read_text().strip() if p.is_file() else None

    # -- metrics ----------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one epoch record to metrics.jsonl (a single write of one line)."""
        self.path.mkdir(parents=True, exist_ok=True)
        line = json.dumps(json_safe(record), sort_keys=False) + "\n"
        with open(self.metrics_path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self, *, from_home: bool = False) -> list[dict[str, Any]]:
        """Every epoch record so far (a torn last line from a crash is skipped).

        Args:
            from_home: read the run's home on object storage rather than the working copy
                (what another node's rank 0 pushed); the working copy is left as it is.
        """
        if from_home and self.home is not None:
            text = self.home.read_text(METRICS_FILE) or ""
        elif self.metrics_path.is_file():
            text = self.metrics_path.read_text()
        else:
            return []
        records = []
        for line in text.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                if line.strip():
                    records.append(json.loads(line))
        return records

    def truncate_metrics(self, after_epoch: int) -> None:
        """Drop records of epochs > `after_epoch` (a restart re-runs them; no duplicates)
        and any torn line left by a crash mid-write."""
        records = self.read_metrics()
        kept = [r for r in records if int(r.get("epoch", 0)) <= after_epoch]
        text = self.metrics_path.read_text() if self.metrics_path.is_file() else ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        # Rewrite when records go, or when a torn last line would swallow the next append.
        if len(kept) != len(lines) or (text and not text.endswith("\n")):
            atomic_write_text(
                self.metrics_path, "".join(json.dumps(json_safe(r)) + "\n" for r in kept)
            )

    # -- summary and normalisation ----------------------------------------------------------------
    def write_summary(self, data: dict[str, Any]) -> None:
        """Atomically write summary.json."""
        write_json(self.summary_path, data)

    def read_summary(self) -> dict[str, Any]:
        """summary.json, or {} before the first write."""
        return read_json_object(self.summary_path)

    def write_normalization(self, params: dict[str, Any]) -> None:
        """Atomically write normalization.json."""
        write_json(self.normalization_path, params)

    def read_normalization(self) -> dict[str, Any]:
        """normalization.json, or {} when the run has none."""
        return read_json_object(self.normalization_path)

    # -- checkpoints --------------------------------------------------------------------------------
    def checkpoints(self) -> list[dict[str, Any]]:
        """Complete checkpoints, oldest first: ``{"epoch", "path", **meta}`` per checkpoint.

        Torn or half-copied checkpoint directories (see `floodlab.tracking.checkpoint_dirs`) and
        temporary ones are left out. For a run on object storage, ``path`` is a URL.
        """
        if self.home is not None:
            return remote_checkpoints(self.checkpoints_url)
        return complete_checkpoints(self.checkpoints_dir)

    @property
    def checkpoints_url(self) -> str:
        """Where the checkpoints of a run on object storage live (its URL + checkpoints/)."""
        if self.home is None:
            raise ValueError(f"{self.where}: a local run has no checkpoints URL")
        return join(self.home.url, CHECKPOINTS_DIR)

    def latest_checkpoint(self) -> Location | None:
        """The checkpoint file (or URL) of the highest epoch, or None."""
        found = self.checkpoints()
        return found[-1]["path"] if found else None

    def prune_checkpoints(self, keep: int) -> list[Location]:
        """Delete complete checkpoints beyond the `keep` best, as Ray Train does for its runs.

        The best rank by score (`floodlab.tracking.checkpoint_dirs.ranked`); the latest is
        kept whatever its score, since a restart continues from it. Each checkpoint's
        metadata goes first, so one deleted halfway is never taken for complete.

        Returns:
            The checkpoint files (or URLs) deleted.
        """
        found = self.checkpoints()
        kept = {c["epoch"] for c in ranked(found)[:keep]}
        if found:
            kept.add(found[-1]["epoch"])
        gone = [c["path"] for c in found if c["epoch"] not in kept]
        for path in gone:
            _delete_checkpoint(path)
        return gone

    def best_checkpoint(self) -> Location:
        """The checkpoint file with the best score (`trainer.checkpoint_metric`).

        Falls back to the latest checkpoint when none recorded a score.

        Raises:
            FloodlabError: when the run has no checkpoint at all.
        """
        found = self.checkpoints()
        if not found:
            raise FloodlabError(
                f"{self.where}: the run has no checkpoint yet (it failed or is still in its "
                "first epoch); train it with `floodlab train <spec>` or pick another run"
            )
        return best_of(found)


def _delete_checkpoint(path: Location) -> None:
    """Delete one checkpoint directory (given its checkpoint file), metadata first."""
    import shutil

    from floodlab.storage import filesystem, is_remote, local_path, storage_errors

    if not is_remote(path):
        folder = local_path(path).parent
        (folder / CHECKPOINT_META).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        return
    url = str(path).rsplit("/", 1)[0]
    with storage_errors(url, "delete an old checkpoint"):
        fs, root = filesystem(url)
        fs.rm(f"{root}/{CHECKPOINT_META}")
        fs.rm(root, recursive=True)


def _hash_of(spec: ExperimentSpec) -> str:
    from floodlab.specs import spec_hash

    return spec_hash(spec)


def list_runs(root: str | Path = "runs") -> list[str]:
    """Every ``<experiment>/<run>`` under `root` (a path or a URL) that holds a spec, sorted."""
    base = check_root(root)
    if isinstance(base, str):
        from floodlab.tracking.home import list_folders

        experiments = list_folders(base)
    elif base.is_dir():
        experiments = sorted(e.name for e in base.iterdir() if e.is_dir())
    else:
        return []
    return sorted(
        f"{exp}/{run}" for exp in experiments for run in RunDir.in_experiment(_child(base, exp))
    )
