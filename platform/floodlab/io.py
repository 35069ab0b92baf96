"""Atomic file writes and figure saving: readers never see half a file (a leaf anyone may use).

Every file floodlab writes for later reading (specs, metrics, summaries, checkpoints, CSVs,
split lists, GeoTIFFs, plots) is written under a hidden temporary name in its own folder
and renamed into place, so a crash or a concurrent reader never meets a torn file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
LOCAL_ONLY = (
    "this file is read or written through the file system, not on object storage (only "
    "stores and the runs root take s3:// URLs): use a local path or a folder every node "
    "mounts at the same path (NFS, Lustre, GPFS, EFS, or a bucket mounted with mountpoint-s3)"
)


def is_uri(path: str | Path) -> bool:
    """True for a URI with a scheme (s3://, gs://, file://, https://, ...)."""
    return _URI.match(str(path)) is not None


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed to `path` if the block succeeds.

    The parent folder is created. On an exception the temporary file is removed and
    `path` is left as it was.

    Args:
        path: the final file.
        suffix: the temporary file's suffix (writers that choose a format by extension,
            such as matplotlib, need the real one, e.g. ".png").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def json_safe(value: Any) -> Any:
    """Recursively replace non-finite floats by None so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write strict JSON (non-finite floats become null)."""
    atomic_write_text(path, json.dumps(json_safe(data), indent=2, sort_keys=False) + "\n")


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in `path`, or {} when the file does not exist (yet)."""
    path = Path(path)
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def save_figure(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """Save a matplotlib figure atomically as PNG and close it.

    Args:
        fig: the figure.
        path: the PNG file.
        **savefig: options of `Figure.savefig` (default dpi 110, tight bounding box).
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, **{"dpi": 110, "bbox_inches": "tight", **savefig})
    finally:
        plt.close(fig)
    return path
