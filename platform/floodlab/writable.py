"""Check output paths before any long work starts: writable, not an input, not a surprise."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from floodlab.errors import OutputPathError


def check_writable(path: str | Path, *, option: str, kind: Literal["file", "folder"]) -> None:
    """Refuse an output path that cannot be created, leaving nothing behind.

    The nearest existing ancestor of `path` must be a folder that accepts new files; this
    is tested by creating and removing a probe file there (permission bits alone do not
    tell, e.g. for root or on read-only and virtual file systems such as /proc). Missing
    folders in between are created later by the writer.

    Args:
        path: the file or folder that will be written.
        option: how the user gave it (e.g. "--out"), named in the message.
        kind: "file" refuses an existing folder at `path`; "folder" leaves an existing
            `path` to the caller (e.g. a store to resume or skip).

    Raises:
        OutputPathError: naming the path, why it cannot be written and what to do.
    """
    p = Path(path)
    fix = f"choose an {option} in a folder you can write to"
    if kind == "file" and p.is_dir():
        raise OutputPathError(f"{option} {p}: is a folder; give a file name inside it instead")
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        what = "a file" if ancestor.is_file() else "not a folder"
        raise OutputPathError(
            f"{option} {p}: cannot be written because {ancestor} is {what}, so nothing can be "
            f"created inside it; {fix}"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".floodlab-write-check-", dir=ancestor)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            why = f"there is no permission to create files in {ancestor}"
        elif e.errno == errno.EROFS:
            why = f"{ancestor} is on a read-only file system"
        else:
            why = f"{ancestor} does not accept new files ({e.strerror})"
        raise OutputPathError(f"{option} {p}: cannot be written because {why}; {fix}") from None
    os.close(fd)
    os.unlink(probe)


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (through links, also hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies below it (links resolved)."""
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real == base or base in real.parents


def check_output(
    path: str | Path,
    *,
    option: str,
    inputs: Sequence[str | Path] = (),
    overwrite: bool = False,
    kind: Literal["file", "folder"] = "file",
) -> None:
    """Refuse an output that would destroy an input or replace an existing file.

    Args:
        path: the file or folder that will be written.
        option: how the user gave it (e.g. "-o/--out"), named in the message.
        inputs: files or folders the command reads; `path` must not be one of them, link to
            one, or lie inside an input folder.
        overwrite: allow replacing an existing `path` (never an input).
        kind: as for `check_writable`.

    Raises:
        OutputPathError: naming the path, the input or existing file, and the fix.
    """
    p = Path(path)
    check_writable(p, option=option, kind=kind)
    for src in map(Path, inputs):
        if _same(p, src) or (src.is_dir() and _inside(p, src)):
            what = "is" if _same(p, src) else "lies inside"
            raise OutputPathError(
                f"{option} {p}: {what} the input {src}; writing there would destroy what is "
                f"being read. Choose another {option}."
            )
    if not overwrite and (p.exists() or p.is_symlink()):
        raise OutputPathError(
            f"{option} {p}: already exists and would be replaced; pass --overwrite to replace "
            f"it, or choose another {option}"
        )
