"""Convert to object storage: build the store in a local staging folder, then upload it.

The conversion itself is the local one (`floodlab.data.convert.pipeline.convert`: atomic,
resumable in ``<staging>.partial``). The upload puts a marker object first, every chunk and
array document next, the root ``zarr.json`` (whose attributes say ``complete``) after them,
and removes the marker last: until the root document exists nothing at the URL opens as a
store, and the marker tells an interrupted upload (finished by running the same command
again) from somebody else's data (refused).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from floodlab.data.convert.pipeline import convert, is_complete
from floodlab.errors import DataError
from floodlab.storage import (
    ROOT_DOCUMENT,
    check_bucket,
    exists,
    filesystem,
    is_remote,
    join,
    local_path,
    read_bytes,
    staging_dir,
    storage_errors,
    upload_tree,
)

log = logging.getLogger(__name__)

UPLOAD_MARKER = ".floodlab-upload"  # present while an upload is unfinished


def check_remote_out(url: str) -> bool:
    """Whether a complete store is already at `url`; DataError when something else is.

    Raises:
        DataError: `url` holds data that is neither a floodlab store nor an unfinished upload.
        StorageError: the storage service cannot be reached, or the bucket does not exist.
    """
    check_bucket(url)
    if is_complete(url):
        return True
    if read_bytes(join(url, ROOT_DOCUMENT)) is not None:
        raise DataError(
            f"{url} holds a Zarr document but not a complete floodlab store; delete it or "
            "choose another --out"
        )
    if exists(url) and read_bytes(join(url, UPLOAD_MARKER)) is None:
        raise DataError(
            f"{url} already holds other data; floodlab will not write a store into it. Delete "
            "it or choose another --out"
        )
    return False


def upload_store(
    local: Path, url: str, *, progress: Callable[[int, int], None] | None = None
) -> None:
    """Upload the complete store folder `local` to `url` (marker, data, root document)."""
    fs, path = filesystem(url)
    marker = join(path, UPLOAD_MARKER)
    with storage_errors(url, "start the upload"):
        fs.pipe_file(marker, b"upload in progress; run the same `floodlab convert` again\n")
    upload_tree(local, url, last=ROOT_DOCUMENT, progress=progress)
    with storage_errors(url, "finish the upload"):
        fs.rm_file(marker)


def convert_to(
    dataset: str,
    src: str | Path,
    out: str | Path,
    *,
    upload_progress: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> Path | str:
    """`convert`, to a folder or to a URL on object storage (see the module docstring).

    Returns:
        The complete store: its path, or its URL.

    Raises:
        as `convert`, and StorageError when object storage cannot be reached.
    """
    if not is_remote(out):
        return convert(dataset, src, local_path(out), **kwargs)
    url = str(out).rstrip("/")
    if check_remote_out(url):
        log.info("%s is already a complete store; nothing to do", url)
        return url
    stage = staging_dir(url)
    stage.mkdir(parents=True, exist_ok=True)
    local = convert(dataset, src, stage / "store.zarr", **kwargs)
    log.info("uploading %s to %s", local, url)
    upload_store(local, url, progress=upload_progress)
    shutil.rmtree(stage, ignore_errors=True)
    return url
