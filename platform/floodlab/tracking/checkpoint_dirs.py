"""A run's checkpoint directories on disk: their names, completeness, listing and ranking.

``<run>/checkpoints/epoch_NNNN/`` holds ``checkpoint.pt`` and ``meta.json`` (epoch, score,
mode, and the byte size of ``checkpoint.pt``). This module imports no torch; writing and
loading checkpoints is `floodlab.tracking.checkpoint`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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


def complete_checkpoints(folder: Path) -> list[dict[str, Any]]:
    """Complete checkpoints in `folder`, oldest first: ``{"epoch", "path", **meta}`` each.

    Torn or half-copied checkpoint directories (see `checkpoint_is_complete`) and
    temporary ones are left out.
    """
    out: list[dict[str, Any]] = []
    if not folder.is_dir():
        return out
    for d in folder.iterdir():
        m = _CHECKPOINT_NAME.match(d.name)
        meta = checkpoint_is_complete(d) if m else None
        if m and meta is not None:
            out.append({**meta, "epoch": int(m.group(1)), "path": d / CHECKPOINT_FILE})
    return sorted(out, key=lambda c: c["epoch"])


def remote_checkpoints(url: str) -> list[dict[str, Any]]:
    """`complete_checkpoints` of a checkpoints folder on object storage (``path``: a URL).

    Complete means the same: ``meta.json`` records the size ``checkpoint.pt`` has. Rank 0
    uploads ``checkpoint.pt`` first and ``meta.json`` last, and each object appears whole
    or not at all, so an interrupted upload is never taken for a checkpoint.
    """
    from floodlab.storage import filesystem, join, storage_errors

    fs, root = filesystem(url)
    with storage_errors(url, "list the run's checkpoints"):
        fs.invalidate_cache(root)
        try:
            files = fs.find(root, detail=True)
        except FileNotFoundError:
            return []
    sizes = {
        str(name)[len(root) :].strip("/"): int(info.get("size") or 0)
        for name, info in files.items()
    }
    out: list[dict[str, Any]] = []
    for rel in sizes:
        folder, _, name = rel.rpartition("/")
        m = _CHECKPOINT_NAME.match(folder)
        if name != CHECKPOINT_META or m is None:
            continue
        with storage_errors(url, "read a checkpoint's metadata"):
            try:
                meta = json.loads(fs.cat_file(f"{root}/{rel}"))
            except (FileNotFoundError, ValueError):
                continue
        recorded = meta.get("files") if isinstance(meta, dict) else None
        key = f"{folder}/{CHECKPOINT_FILE}"
        if not isinstance(recorded, dict) or recorded.get(CHECKPOINT_FILE) != sizes.get(key):
            continue
        out.append({**meta, "epoch": int(m.group(1)), "path": join(url, key)})
    return sorted(out, key=lambda c: c["epoch"])


def ranked(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`found` (oldest first) best first: by score, then the later epoch.

    The score's mode (max/min) comes from the newest scored checkpoint; unscored (or NaN)
    checkpoints rank last, the latest of them first.
    """
    scored = [c for c in found if _score(c) is not None]
    sign = -1.0 if scored and scored[-1].get("mode", "max") == "min" else 1.0

    def key(c: dict[str, Any]) -> tuple[bool, float, int]:
        score = _score(c)
        return score is not None, sign * score if score is not None else 0.0, c["epoch"]

    return sorted(found, key=key, reverse=True)


def _score(c: dict[str, Any]) -> float | None:
    score = c.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or score != score:
        return None
    return float(score)


def best_of(found: list[dict[str, Any]]) -> Path | str:
    """The checkpoint file (or URL) with the best score among `found` (at least one, oldest first).

    The score's mode (max/min) comes from the newest scored checkpoint; among equal scores
    the later epoch wins; without any score, the latest checkpoint.
    """
    path: Path | str = ranked(found)[0]["path"]
    return path
