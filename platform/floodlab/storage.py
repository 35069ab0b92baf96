"""Object storage (``s3://``, ``gs://``, ``abfs://``, ...) for converted stores, through fsspec.

A store location is either a file system path or a URL that fsspec knows. ``file://`` URLs
are plain paths. Everything else goes through the filesystem library of its protocol
(``s3fs`` for ``s3://``: ``pip install 'floodlab[s3]'``), which takes the endpoint and the
credentials from its own standard environment and configuration only (for S3:
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``~/.aws/config``, an instance role). floodlab never takes, stores or passes on a credential:
every Ray worker must find them in its own environment, as every node of a cluster does.

A store is written to object storage by converting into a local staging folder (atomic and
resumable as every conversion) and uploading it with the root ``zarr.json`` last: until that
object exists there is no store at the URL, so an interrupted upload never looks like a
store, and running the same command again finishes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from floodlab.errors import FloodlabError
from floodlab.io import is_uri

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

Location = Path | str  # a store location: a path, or a URL on object storage
LOCAL_PROTOCOLS = ("file", "local")
# The library each common protocol needs, for the message when it is missing.
PROTOCOL_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs"}
ROOT_DOCUMENT = "zarr.json"  # a Zarr v3 group exists once this object does
CREDENTIALS_HINT = (
    "check the address and that this machine (and every Ray worker) can reach the service "
    "with credentials of its own: for S3, AWS_ENDPOINT_URL for an S3-compatible server, "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or an instance role"
)


class StorageError(FloodlabError):
    """Object storage that cannot be used: unknown protocol, missing library, unreachable."""


def protocol(location: str | Path) -> str | None:
    """The URL scheme of `location` (``s3``), or None for a file system path."""
    return urlparse(str(location)).scheme.lower() if is_uri(location) else None


def is_remote(location: str | Path) -> bool:
    """True for a URL on object storage (any scheme but ``file://``)."""
    scheme = protocol(location)
    return scheme is not None and scheme not in LOCAL_PROTOCOLS


def local_path(location: str | Path) -> Path:
    """A file system path from a path or a ``file://`` URL."""
    text = str(location)
    if protocol(text) in LOCAL_PROTOCOLS:
        return Path(urlparse(text).path)
    if is_uri(text):
        raise ValueError(f"{text!r} is on object storage, not a file system path")
    return Path(text)


def check_location(location: str, field: str) -> str:
    """`location` itself when floodlab can store data there; ValueError naming `field`
    otherwise (an unknown protocol, or its library not installed)."""
    scheme = protocol(location)
    if scheme is None or scheme in LOCAL_PROTOCOLS:
        return location
    parsed = urlparse(location)
    if parsed.username or parsed.password:
        raise ValueError(
            f"{field}: the URL carries credentials; give them to the storage library through "
            "its environment or config instead (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...), never "
            "in a location that specs, runs and logs record"
        )
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except ValueError:
        raise ValueError(
            f"{field}: {location!r} uses the protocol {scheme}://, which fsspec does not know; "
            "use a file system path or an s3://, gs://, abfs:// ... URL"
        ) from None
    except ImportError:
        package = PROTOCOL_PACKAGES.get(scheme, f"the fsspec filesystem for {scheme}://")
        raise ValueError(
            f"{field}: {location!r} needs {package}, which is not installed: "
            f"pip install {package}" + (" (or floodlab[s3])" if package == "s3fs" else "")
        ) from None
    return location


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of `url` and the path within it.

    Raises:
        StorageError: unknown protocol or its library missing.
    """
    try:
        check_location(url, "location")
    except ValueError as e:
        raise StorageError(str(e)) from None
    import fsspec

    return fsspec.core.url_to_fs(url)


@contextlib.contextmanager
def storage_errors(url: str, action: str) -> Iterator[None]:
    """Turn a failure of the storage service into a StorageError naming `url` and the fix."""
    try:
        yield
    except FloodlabError:
        raise
    except Exception as e:
        raise StorageError(
            f"{url}: could not {action} ({type(e).__name__}: {e}); {CREDENTIALS_HINT}"
        ) from None


def exists(url: str) -> bool:
    """Whether anything is stored at `url` (an object or a prefix)."""
    fs, path = filesystem(url)
    with storage_errors(url, "reach the storage service"):
        fs.invalidate_cache(path)  # another process may have written it since
        return bool(fs.exists(path))


def check_bucket(url: str) -> None:
    """StorageError naming the bucket when the bucket of `url` does not exist (or these
    credentials cannot see it); the storage service unreachable is one too."""
    fs, path = filesystem(url)
    bucket = path.split("/", 1)[0]
    with storage_errors(url, "reach the storage service"):
        found = bool(fs.exists(bucket))
    if not found:
        raise StorageError(
            f"{url}: the bucket {bucket!r} does not exist (or these credentials cannot see "
            f"it); create it first (for S3: `aws s3 mb s3://{bucket}`)"
        )


def read_bytes(url: str) -> bytes | None:
    """The object at `url`, or None if there is none."""
    fs, path = filesystem(url)
    with storage_errors(url, "read"):
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None


def join(url: str, *parts: str) -> str:
    """`url` with path parts appended."""
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts)])


def staging_dir(url: str) -> Path:
    """The local folder a store bound for `url` is built in before it is uploaded: the same
    for the same URL, so an interrupted conversion or upload resumes."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "floodlab-staging" / digest


def upload_tree(
    local: Path,
    url: str,
    *,
    last: str = ROOT_DOCUMENT,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Copy the folder `local` to `url`, its file `last` after every other.

    Args:
        local: the folder to upload.
        url: where its contents go (``url/<relative path>``).
        last: the file uploaded last (a Zarr store's root document: until it is there,
            nothing at `url` opens as a store).
        progress: called with (files done, files total).

    Returns:
        The number of files uploaded.
    """
    fs, root = filesystem(url)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    final = local / last
    ordered = [p for p in files if p != final] + ([final] if final in files else [])
    with storage_errors(url, "upload the store"):
        batch: list[Path] = []
        done = 0

        def flush() -> None:
            nonlocal done
            if batch:
                fs.put(
                    [str(p) for p in batch],
                    [f"{root}/{p.relative_to(local).as_posix()}" for p in batch],
                )
                done += len(batch)
                batch.clear()
                if progress is not None:
                    progress(done, len(ordered))

        for p in ordered:
            if p == final:
                flush()
            batch.append(p)
            if len(batch) >= 256:
                flush()
        flush()
    return len(ordered)


def absolute(location: str | Path) -> str:
    """A location as recorded in runs: an absolute path, or the URL as given."""
    return (
        str(location).rstrip("/") if is_remote(location) else str(local_path(location).absolute())
    )
