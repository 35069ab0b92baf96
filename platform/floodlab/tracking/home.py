"""Run and sweep folders on object storage: a local working copy mirrored to its home URL.

With ``logging.root: s3://bucket/runs`` a run's home is ``s3://bucket/runs/<experiment>/<run>``.
Whoever writes the run (the driver, rank 0, every rank for its own ``workers/rank<r>.json``)
writes into a local *working copy* of that folder, exactly as into a local run, and pushes
what it wrote to the home at the moments a reader may look: after every epoch, after an
evaluation, at the end. Readers (``--resume``, ``evaluate``, ``predict``, ``trials``, a
restarted worker on another node) pull the home into their own working copy first.

Why a working copy rather than writing every file through the storage library: the files
of a run are small and appended to (``metrics.jsonl``, TensorBoard's event files), and
object stores have no append; TensorBoard's writer, the curves plot and the atomic
renames every local run relies on stay as they are; and a run can be pushed as a whole.
Checkpoints are the exception: they are large and written once, so they go straight to
the home (``checkpoints/epoch_NNNN/``: ``checkpoint.pt``, then ``meta.json``, whose recorded
size marks the checkpoint complete) and never stay in the working copy.

The working copy of a URL is ``<tmp>/floodlab-runs/<hash of scheme://bucket>/<path>``: every
process on every node finds the same place for the same URL without being told. Nothing
in it is precious: it can be deleted at any time between commands.

Endpoint and credentials come only from the storage library's own environment (see
`floodlab.storage`); nothing here writes one anywhere.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

from floodlab.storage import filesystem, join, storage_errors

WORKING_COPIES = "floodlab-runs"


def working_copy(url: str) -> Path:
    """The local folder that mirrors `url` on this machine (the same for every process)."""
    parsed = urlparse(url)
    digest = hashlib.sha256(f"{parsed.scheme}://{parsed.netloc}".encode()).hexdigest()[:12]
    parts = [p for p in parsed.path.split("/") if p and p not in (".", "..")]
    return Path(tempfile.gettempdir(), WORKING_COPIES, digest, *parts)


def _visible(relative: str, skip: Iterable[str]) -> bool:
    """Whether a file of a folder is mirrored: not in a skipped top-level folder, not a
    hidden temporary file of an atomic write."""
    first = relative.split("/", 1)[0]
    name = relative.rsplit("/", 1)[-1]
    return first not in skip and not name.startswith(".")


class Home:
    """A folder's home URL and its local working copy.

    Attributes:
        url: the home, e.g. ``s3://bucket/runs/<experiment>/<run>``.
        local: its working copy (`working_copy`).
        skip: top-level folders that live only at the home (checkpoints).
    """

    def __init__(self, url: str, skip: Iterable[str] = ()):
        self.url = url.rstrip("/")
        self.local = working_copy(self.url)
        self.skip = tuple(skip)
        self._pushed: dict[str, tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"Home({self.url!r})"

    def push(self, files: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> int:
        """Upload what changed in the working copy since this object last pushed it.

        Args:
            files: relative paths to push (default: every file of the working copy).
            exclude: more top-level folders to leave out.

        Returns:
            The number of files uploaded.
        """
        if files is None:
            found = (p for p in self.local.rglob("*") if p.is_file())
            names = [p.relative_to(self.local).as_posix() for p in found]
        else:
            names = [f for f in files if (self.local / f).is_file()]
        skip = (*self.skip, *exclude)
        todo: dict[str, tuple[int, int]] = {}
        for name in sorted(names):
            if not _visible(name, skip):
                continue
            st = (self.local / name).stat()
            if self._pushed.get(name) != (st.st_size, st.st_mtime_ns):
                todo[name] = (st.st_size, st.st_mtime_ns)
        if not todo:
            return 0
        fs, root = filesystem(self.url)
        with storage_errors(self.url, "upload the run's files"):
            fs.put([str(self.local / n) for n in todo], [f"{root}/{n}" for n in todo])
        self._pushed.update(todo)  # only once uploaded: a failed push is retried next time
        return len(todo)

    def pull(self, exclude: Iterable[str] = ()) -> int:
        """Download the home (but its skipped folders) into the working copy.

        Args:
            exclude: more top-level folders to leave out.

        Returns:
            The number of files downloaded.
        """
        fs, root = filesystem(self.url)
        with storage_errors(self.url, "download the run's files"):
            fs.invalidate_cache(root)
            found = fs.find(root) if fs.exists(root) else []
        skip = (*self.skip, *exclude)
        names = [n for n in (p[len(root) :].lstrip("/") for p in found) if n and _visible(n, skip)]
        if not names:
            return 0
        self.local.mkdir(parents=True, exist_ok=True)
        with storage_errors(self.url, "download the run's files"):
            fs.get([f"{root}/{n}" for n in names], [str(self.local / n) for n in names])
        for n in names:
            st = (self.local / n).stat()
            self._pushed[n] = (st.st_size, st.st_mtime_ns)
        return len(names)

    def read_text(self, relative: str) -> str | None:
        """One file of the home, read without touching the working copy (None: absent)."""
        from floodlab.storage import read_bytes

        data = read_bytes(join(self.url, relative))
        return None if data is None else data.decode()


def write_text(url: str, text: str) -> None:
    """Write one small object (a single PUT: readers see the old or the new text)."""
    fs, path = filesystem(url)
    with storage_errors(url, "write"):
        fs.pipe_file(path, text.encode())


def list_folders(url: str) -> list[str]:
    """The names of the folders directly under `url` (none when it does not exist)."""
    fs, root = filesystem(url)
    with storage_errors(url, "list"):
        fs.invalidate_cache(root)
        try:
            entries = fs.ls(root, detail=True, refresh=True)
        except FileNotFoundError:
            return []
    return sorted(
        str(e["name"]).rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory"
    )


def file_size(url: str) -> int | None:
    """The byte size of the object at `url`, or None when there is none."""
    fs, path = filesystem(url)
    with storage_errors(url, "reach the storage service"):
        fs.invalidate_cache(path)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return None
    return int(info["size"]) if info.get("type") == "file" else None


def fetch(url: str) -> Path:
    """A local copy of the object at `url` (downloaded when missing or of another size), at
    its place in the working copies."""
    local = working_copy(url)
    size = file_size(url)
    if size is None:
        raise FileNotFoundError(url)
    if not local.is_file() or local.stat().st_size != size:
        fs, path = filesystem(url)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.part")
        with storage_errors(url, "download"):
            fs.get_file(path, str(tmp))
        tmp.replace(local)
    return local
