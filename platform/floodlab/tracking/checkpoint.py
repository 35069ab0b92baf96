"""The one checkpoint format (`Checkpoint`): save atomically, load with ``weights_only=True``.

Everything in a checkpoint is tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(weights_only=True)`` (no pickled code is ever executed). The loop's own state
(epoch, global step, best metric, early-stopping counters) is in ``loop`` only, written and
read by `floodlab.train.state.LoopState`.

On disk a checkpoint is a directory ``epoch_NNNN/`` holding ``checkpoint.pt`` and
``meta.json`` (epoch, score, and the byte size of ``checkpoint.pt``). `write_checkpoint`
builds the directory under a hidden temporary name and renames it into place, so a
directory named ``epoch_NNNN`` is complete; on storage without atomic renames the size in
``meta.json``, written last, tells a complete checkpoint from a torn one
(`floodlab.tracking.checkpoint_dirs.checkpoint_is_complete`). On object storage, where
nothing can be renamed, `upload_checkpoint` puts ``checkpoint.pt`` first and ``meta.json``
last, and `load_checkpoint` reads a checkpoint URL directly.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, TypedDict, cast

import torch

from floodlab.errors import TrainingError
from floodlab.io import atomic_path, json_safe, write_json
from floodlab.tracking.checkpoint_dirs import CHECKPOINT_FILE, CHECKPOINT_META


class _CheckpointRequired(TypedDict):
    """The keys every checkpoint has."""

    task: dict[str, Any]  # task.state_dict(): the weights of every network
    optimizers: dict[str, Any]  # per optimiser ("main", or "g"/"d"): its state_dict
    schedulers: dict[str, Any]  # per optimiser: its epoch LR schedule's state_dict
    scaler: dict[str, Any]  # the GradScaler's state_dict; {} when fp16 scaling is off
    spec_hash: str  # hash of the spec it was trained with
    metrics: dict[str, float]  # the numeric record of its epoch
    loop: dict[str, Any]  # LoopState.to_dict(): epoch (last completed, 1-based), ...


class Checkpoint(_CheckpointRequired, total=False):
    """Everything needed to continue a run at its next epoch (what ``checkpoint.pt`` holds)."""

    # With trainer.ema_decay: `task` holds the averaged weights, this the trained ones.
    training: dict[str, Any]


REQUIRED_KEYS: tuple[str, ...] = tuple(
    k for k in Checkpoint.__annotations__ if k in Checkpoint.__required_keys__
)


def save_checkpoint(path: str | Path, state: Checkpoint) -> Path:
    """Write `state` to `path` under a temporary name, then rename (never half-written).

    Args:
        path: the checkpoint file (its folder is created).
        state: the checkpoint.

    Returns:
        The written path.
    """
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks {missing}; required keys: {list(REQUIRED_KEYS)}")
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def write_meta(checkpoint_dir: str | Path, meta: dict[str, Any]) -> None:
    """Write the small JSON beside a checkpoint (epoch, score, mode) that RunDir ranks by.

    The byte size of the directory's ``checkpoint.pt`` is recorded with it: together they
    mark the checkpoint complete, so write the checkpoint file first.
    """
    folder = Path(checkpoint_dir)
    files = {CHECKPOINT_FILE: (folder / CHECKPOINT_FILE).stat().st_size}
    write_json(folder / CHECKPOINT_META, json_safe({**meta, "files": files}))


def write_checkpoint(directory: str | Path, state: Checkpoint, meta: dict[str, Any]) -> Path:
    """Write one complete checkpoint directory (``checkpoint.pt`` + ``meta.json``) atomically.

    Both files are written into a hidden sibling (``.epoch_NNNN.tmp-<hex>``) that is renamed
    to `directory` once complete, so a reader (a restarted worker, `RunDir.checkpoints`)
    sees either nothing or the whole checkpoint. An existing `directory` is replaced.

    Args:
        directory: the checkpoint directory, e.g. ``<run>/checkpoints/epoch_0003``.
        state: the checkpoint.
        meta: what ranks it: epoch, metric, mode, score, metrics.

    Returns:
        The checkpoint file inside `directory`.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{secrets.token_hex(4)}")
    try:
        tmp.mkdir()
        save_checkpoint(tmp / CHECKPOINT_FILE, state)
        write_meta(tmp, meta)
        if directory.exists():
            # Re-written after a restart: move the old one aside first (rename is atomic,
            # and the run keeps its older complete checkpoints meanwhile).
            old = directory.with_name(f".{directory.name}.old-{secrets.token_hex(4)}")
            os.rename(directory, old)
            os.rename(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory / CHECKPOINT_FILE


def upload_checkpoint(directory: Path, url: str) -> str:
    """Copy a complete local checkpoint directory to `url` (``.../checkpoints/epoch_NNNN``).

    ``checkpoint.pt`` goes first and ``meta.json`` (which records its size) last, so until
    the upload finished nothing at `url` counts as a complete checkpoint.

    Returns:
        The URL of the uploaded ``checkpoint.pt``.
    """
    from floodlab.storage import filesystem, join, storage_errors

    fs, root = filesystem(url)
    with storage_errors(url, "upload the checkpoint"):
        for name in (CHECKPOINT_FILE, CHECKPOINT_META):
            fs.put_file(str(directory / name), f"{root}/{name}")
    return join(url, CHECKPOINT_FILE)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint saved by `save_checkpoint` (``weights_only=True``).

    Args:
        path: the checkpoint file, or its URL on object storage.
        map_location: where its tensors go.

    Raises:
        TrainingError: when the file is missing, unreadable or not in floodlab's format.
    """
    from floodlab.storage import is_remote, read_bytes

    source: Any = path
    if is_remote(path):
        data = read_bytes(str(path))
        if data is None:
            raise TrainingError(f"{path}: no such checkpoint object; list the run's checkpoints/")
        source = io.BytesIO(data)
    else:
        path = Path(path)
        if not path.is_file():
            raise TrainingError(
                f"{path}: no such checkpoint file; list a run's checkpoints in <run>/checkpoints/"
            )
    try:
        state = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt, truncated, or a pickle that needs code to load
        raise TrainingError(
            f"{path}: cannot load the checkpoint ({type(e).__name__}: {e}); it is corrupt "
            "or was not written by floodlab. Pick another checkpoint of the run."
        ) from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise TrainingError(
            f"{path}: not a floodlab checkpoint (expected keys {list(REQUIRED_KEYS)}, got {keys})"
        )
    return cast(Checkpoint, dict(state))
