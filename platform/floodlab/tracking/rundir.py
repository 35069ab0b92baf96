"""The run-directory layout: resolved spec, metrics, summary, checkpoints, TensorBoard events.

One run lives in ``<root>/<experiment>/<run>/``::

    spec.yaml            the resolved spec (all defaults filled in)
    spec_hash            its 12-hex-digit hash
    metrics.jsonl        one JSON record per epoch: epoch, train/..., val/..., lr, time
    summary.json         status, best metric/epoch/checkpoint, final metrics, spec hash
    normalization.json   the normalisation parameters the model was trained with
    checkpoints/         epoch_0003/{checkpoint.pt, meta.json}, ... (managed by Ray Train)
    tensorboard/         TensorBoard event files (scalars, image panels, HParams)
    workers/             rank<r>.json: which process/host/device ran each rank
    eval/<split>/        `floodlab evaluate` reports

``<root>/<experiment>/latest`` points at the run that most recently wrote its first
checkpoint (`RunDir.mark_latest`): a run that failed before any checkpoint stays listed,
with ``status: failed`` and the reason in its summary, but never becomes ``latest``. This
module imports no torch, so any part of floodlab (and `floodlab validate`) may use it cheaply.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floodlab.errors import FloodlabError
from floodlab.io import atomic_write_text, json_safe, write_json

if TYPE_CHECKING:
    from floodlab.specs import ExperimentSpec

SPEC_FILE = "spec.yaml"
HASH_FILE = "spec_hash"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
NORMALIZATION_FILE = "normalization.json"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
WORKERS_DIR = "workers"
EVAL_DIR = "eval"
LATEST = "latest"
# Inside one checkpoint directory.
CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_META = "meta.json"
_CHECKPOINT_NAME = re.compile(r"^epoch_(\d+)$")


def checkpoint_dir_name(epoch: int) -> str:
    """The directory name of the checkpoint taken after `epoch` (1-based), e.g. epoch_0003."""
    return f"epoch_{epoch:04d}"


def checkpoint_is_complete(directory: Path) -> dict[str, Any] | None:
    """The metadata of a complete checkpoint directory, else None.

    Complete: ``meta.json`` parses and records the byte size of ``checkpoint.pt``, and the
    file has that size. `floodlab.tracking.checkpoint.write_checkpoint` writes the metadata
    last, so a directory torn by a crash (or still being copied) never qualifies.
    """
    try:
        meta = json.loads((directory / CHECKPOINT_META).read_text())
        size = (directory / CHECKPOINT_FILE).stat().st_size
    except (OSError, ValueError):
        return None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or files.get(CHECKPOINT_FILE) != size:
        return None
    return dict(meta)


def _check_local(root: str | Path) -> None:
    if "://" in str(root):
        raise FloodlabError(
            f"logging.root: {root!r} is a URI, but run directories need a local or shared "
            "(e.g. NFS) folder that every node mounts at the same path; set logging.root to "
            "such a folder, e.g. /shared/runs"
        )


class RunDir:
    """One run directory and the files in it.

    Attributes:
        path: the run directory, ``<root>/<experiment>/<name>``.
        name: the run name.
        experiment: the experiment name (the parent folder).
    """

    def __init__(self, path: str | Path):
        _check_local(path)
        self.path = Path(path).absolute()
        self.name = self.path.name
        self.experiment = self.path.parent.name

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

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
        _check_local(root)
        exp_dir = Path(root).absolute() / experiment
        exp_dir.mkdir(parents=True, exist_ok=True)
        if name is None:
            tag = _hash_of(spec)[:6] if spec is not None else secrets.token_hex(3)
            base = f"{time.strftime('%Y%m%d-%H%M%S')}-{tag}"
            name, n = base, 1
            while (exp_dir / name).exists():  # two runs in the same second
                n += 1
                name = f"{base}-{n}"
        if name == LATEST or "/" in name:
            raise FloodlabError(f"run name {name!r}: must not be '{LATEST}' or contain '/'")
        run = cls(exp_dir / name)
        run.path.mkdir(parents=True, exist_ok=True)
        if spec is not None:
            run.write_spec(spec)
        return run

    def mark_latest(self) -> bool:
        """Point ``<experiment>/latest`` at this run, if it holds a complete checkpoint.

        Returns:
            Whether ``latest`` now points here.
        """
        if not self.checkpoints():
            return False
        if _read_latest(self.path.parent) != self.name:
            _point_latest(self.path.parent, self.name)
        return True

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
        _check_local(root)
        direct = Path(ref)
        if (direct / SPEC_FILE).is_file():
            return cls(direct)
        parts = [p for p in str(ref).strip("/").split("/") if p]
        base = Path(root)
        if len(parts) == 1:
            parts.append(LATEST)
        if len(parts) == 2:
            exp_dir = base / parts[0]
            name = _read_latest(exp_dir) if parts[1] == LATEST else parts[1]
            if name is not None and (exp_dir / name / SPEC_FILE).is_file():
                return cls(exp_dir / name)
        available = list_runs(root)
        shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
        listing = (
            f"available runs under {root}/: {shown}" if available else f"no runs under {root}/"
        )
        raise FloodlabError(
            f"run {str(ref)!r}: not found (give a run directory, <experiment>/<run> or "
            f"<experiment>/latest); {listing}. Train one with `floodlab train <spec>`."
        )

    # -- paths --------------------------------------------------------------------------------
    @property
    def spec_path(self) -> Path:
        """The resolved spec YAML."""
        return self.path / SPEC_FILE

    @property
    def metrics_path(self) -> Path:
        """``metrics.jsonl``: one record per epoch."""
        return self.path / METRICS_FILE

    @property
    def summary_path(self) -> Path:
        """``summary.json``."""
        return self.path / SUMMARY_FILE

    @property
    def normalization_path(self) -> Path:
        """``normalization.json``."""
        return self.path / NORMALIZATION_FILE

    @property
    def tensorboard_dir(self) -> Path:
        """TensorBoard event directory."""
        return self.path / TENSORBOARD_DIR

    @property
    def checkpoints_dir(self) -> Path:
        """Where checkpoint directories live (Ray Train's storage for this run)."""
        return self.path / CHECKPOINTS_DIR

    @property
    def workers_dir(self) -> Path:
        """Per-rank process records."""
        return self.path / WORKERS_DIR

    def eval_dir(self, split: str, store: str | Path | None = None) -> Path:
        """Where `floodlab evaluate` writes the reports of one split.

        Args:
            split: the evaluated split.
            store: another store than the run's own, if evaluated on one: its reports go
                to ``eval/<split>-on-<store name>/`` so they never replace the run's own.
        """
        if store is None:
            return self.path / EVAL_DIR / split
        name = Path(str(store).rstrip("/")).name.removesuffix(".zarr")
        return self.path / EVAL_DIR / f"{split}-on-{name}"

    # -- spec -----------------------------------------------------------------------------------
    def write_spec(self, spec: ExperimentSpec) -> None:
        """Write the resolved spec and its hash."""
        from floodlab.specs import dump_spec

        atomic_write_text(self.spec_path, dump_spec(spec))
        atomic_write_text(self.path / HASH_FILE, _hash_of(spec) + "\n")

    def read_spec(self) -> ExperimentSpec:
        """Load the run's resolved spec."""
        from floodlab.specs import load_spec

        return load_spec(self.spec_path)

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

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every epoch record so far (a torn last line from a crash is skipped)."""
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
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
        if not self.summary_path.is_file():
            return {}
        return dict(json.loads(self.summary_path.read_text()))

    def write_normalization(self, params: dict[str, Any]) -> None:
        """Atomically write normalization.json."""
        write_json(self.normalization_path, params)

    def read_normalization(self) -> dict[str, Any]:
        """normalization.json, or {} when the run has none."""
        if not self.normalization_path.is_file():
            return {}
        return dict(json.loads(self.normalization_path.read_text()))

    # -- checkpoints --------------------------------------------------------------------------------
    def checkpoints(self) -> list[dict[str, Any]]:
        """Complete checkpoints, oldest first: ``{"epoch", "path", **meta}`` per checkpoint.

        Torn or half-copied checkpoint directories (see `checkpoint_is_complete`) and
        temporary ones are left out.
        """
        out: list[dict[str, Any]] = []
        if not self.checkpoints_dir.is_dir():
            return out
        for d in self.checkpoints_dir.iterdir():
            m = _CHECKPOINT_NAME.match(d.name)
            meta = checkpoint_is_complete(d) if m else None
            if m and meta is not None:
                out.append({**meta, "epoch": int(m.group(1)), "path": d / CHECKPOINT_FILE})
        return sorted(out, key=lambda c: c["epoch"])

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint file of the highest epoch, or None."""
        found = self.checkpoints()
        return Path(found[-1]["path"]) if found else None

    def best_checkpoint(self) -> Path:
        """The checkpoint file with the best score (`trainer.checkpoint_metric`).

        Falls back to the latest checkpoint when none recorded a score.

        Raises:
            FloodlabError: when the run has no checkpoint at all.
        """
        found = self.checkpoints()
        if not found:
            raise FloodlabError(
                f"{self.path}: the run has no checkpoint yet (it failed or is still in its "
                "first epoch); train it with `floodlab train <spec>` or pick another run"
            )
        scored = [c for c in found if isinstance(c.get("score"), int | float)]
        if not scored:
            return Path(found[-1]["path"])
        sign = -1.0 if scored[-1].get("mode", "max") == "min" else 1.0
        # Best score wins; among equals the later epoch.
        best = max(scored, key=lambda c: (sign * float(c["score"]), c["epoch"]))
        return Path(best["path"])


def _hash_of(spec: ExperimentSpec) -> str:
    from floodlab.specs import spec_hash

    return spec_hash(spec)


def _point_latest(exp_dir: Path, name: str) -> None:
    """Atomically point ``<exp>/latest`` at `name` (a relative symlink, else a text file)."""
    link = exp_dir / LATEST
    tmp = exp_dir / f".{LATEST}.{secrets.token_hex(4)}"
    try:
        os.symlink(name, tmp)
    except OSError:  # filesystems without symlinks
        atomic_write_text(link, name + "\n")
        return
    os.replace(tmp, link)


def _read_latest(exp_dir: Path) -> str | None:
    link = exp_dir / LATEST
    if link.is_symlink():
        return os.readlink(link).rstrip("/").split("/")[-1]
    if link.is_file():
        return link.read_text().strip() or None
    return None


def list_runs(root: str | Path = "runs") -> list[str]:
    """Every ``<experiment>/<run>`` under `root` that holds a spec, sorted."""
    base = Path(root)
    if not base.is_dir():
        return []
    return sorted(
        f"{exp.name}/{run.name}"
        for exp in base.iterdir()
        if exp.is_dir()
        for run in exp.iterdir()
        if run.name != LATEST and not run.is_symlink() and (run / SPEC_FILE).is_file()
    )
