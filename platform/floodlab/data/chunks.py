"""Synchronous chunk reads and writes of local Zarr v3 arrays in the converter's layout.

zarr-python routes every chunk through its asyncio I/O thread and codec thread pools: for
a training patch (a few small chunks) that costs ~1 ms per read, and ~2 ms of CPU per
chunk written, against ~0.05 ms to read or write the chunk file directly
(benchmarks/loader.py). `ChunkReader`/`ChunkWriter` implement exactly what the Zarr v3
specification defines for the arrays the converter creates — regular chunk grid, default
chunk keys (``c/i/j/...`` with "/"), a little-endian ``bytes`` codec optionally followed by
``blosc`` — and `open` returns None for any other layout so callers fall back to zarr.
Arrays stay ordinary Zarr v3 arrays: zarr (and any other Zarr v3 reader) reads them.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs import blosc

from floodlab.errors import DataError

# Zarr v3 data type names this reader decodes, mapped to numpy little-endian dtypes.
_DTYPES = {
    "bool": "|b1",
    "int8": "|i1",
    "uint8": "|u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "float32": "<f4",
    "float64": "<f8",
}


class ChunkReader:
    """Direct reads of one local Zarr v3 array (see module docstring for what qualifies).

    Attributes:
        path: the array folder (holding zarr.json).
        shape: array shape.
        chunks: chunk shape.
        dtype: numpy dtype of the elements.
        fill: fill value of chunks that were never written.
    """

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = path
        self.shape = tuple(meta["shape"])
        self.chunks = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
        self.dtype = np.dtype(_DTYPES[meta["data_type"]])
        fill = meta.get("fill_value")
        self.fill = np.nan if fill == "NaN" else fill
        blosc_cfg = [c.get("configuration", {}) for c in meta["codecs"] if c["name"] == "blosc"]
        self.blosc = bool(blosc_cfg)
        self.blosc_config: dict[str, Any] = blosc_cfg[0] if blosc_cfg else {}
        self._prefix = os.path.join(str(path), "c", "")
        # Uncompressed chunks with one element in every leading chunk dimension (the
        # converter's (1, 1, y, x) and (1, y, x)) are read row-range by row-range.
        self._row_reads = (
            not self.blosc and len(self.chunks) >= 2 and all(c == 1 for c in self.chunks[:-2])
        )

    @classmethod
    def open(cls, path: str | Path) -> ChunkReader | None:
        """A reader for the array at `path`, or None if its layout is not the supported one."""
        path = Path(path)
        try:
            meta = json.loads((path / "zarr.json").read_text())
        except (OSError, ValueError):
            return None
        codecs = meta.get("codecs", [])
        names = [c.get("name") for c in codecs]
        key = meta.get("chunk_key_encoding", {})
        ok = (
            meta.get("zarr_format") == 3
            and meta.get("node_type") == "array"
            and meta.get("data_type") in _DTYPES
            and meta.get("chunk_grid", {}).get("name") == "regular"
            and key.get("name") == "default"
            and key.get("configuration", {}).get("separator", "/") == "/"
            and names in (["bytes"], ["bytes", "blosc"])
            and codecs[0].get("configuration", {}).get("endian", "little") == "little"
            and not meta.get("storage_transformers")
        )
        return cls(path, meta) if ok else None  # cls: ChunkReader or ChunkWriter

    def _missing(self, name: str) -> None:
        """A chunk file is absent: fine (never written: fill value) unless the array is gone.

        Raises:
            DataError: the array's metadata vanished too, i.e. the store was deleted, moved
                or unmounted while in use; reading on would silently return fill values.
        """
        if not os.path.exists(os.path.join(str(self.path), "zarr.json")):
            raise DataError(
                f"{self.path.parent}: the store disappeared while in use (its array "
                f"{self.path.name} and chunk {name} are gone: deleted, moved or unmounted); "
                "restore it or re-run `floodlab convert`, then start again"
            )

    def _unreadable(self, name: str, error: OSError) -> DataError:
        return DataError(
            f"{self.path.parent}: cannot read chunk {name} of array {self.path.name} "
            f"({type(error).__name__}: {error}); check the store's permissions and storage"
        )

    def _chunk(self, index: tuple[int, ...]) -> np.ndarray:
        """One whole chunk (edge chunks are stored at full chunk shape)."""
        name = self._prefix + "/".join(map(str, index))  # plain strings: pathlib costs ~10 us
        try:
            with open(name, "rb", buffering=0) as f:
                data = f.readall()
        except FileNotFoundError:
            self._missing(name)
            return np.full(self.chunks, self.fill, dtype=self.dtype)
        except OSError as e:
            raise self._unreadable(name, e) from None
        if self.blosc:
            data = blosc.decompress(data)
        return np.frombuffer(data, dtype=self.dtype).reshape(self.chunks)

    def _rows(self, index: tuple[int, ...], y0: int, y1: int) -> np.ndarray:
        """Rows [y0, y1) of an uncompressed chunk whose leading chunk dims are all 1, read
        as one contiguous byte range: (y1 - y0, chunk_w), only the bytes a window needs."""
        width = self.chunks[-1]
        row = width * self.dtype.itemsize
        name = self._prefix + "/".join(map(str, index))
        try:
            fd = os.open(name, os.O_RDONLY)
        except FileNotFoundError:
            self._missing(name)
            return np.full((y1 - y0, width), self.fill, dtype=self.dtype)
        except OSError as e:
            raise self._unreadable(name, e) from None
        try:
            data = os.pread(fd, (y1 - y0) * row, y0 * row)
        except OSError as e:
            raise self._unreadable(name, e) from None
        finally:
            os.close(fd)
        return np.frombuffer(data, dtype=self.dtype).reshape(y1 - y0, width)

    def read(self, selection: tuple[int | slice, ...]) -> np.ndarray:
        """Read `selection`: ints and contiguous slices (step 1), one per dimension.

        Returns:
            A new array with the int dimensions dropped, as zarr would return it.
        """
        starts, stops, squeeze = [], [], []
        for dim, (sel, size) in enumerate(zip(selection, self.shape, strict=True)):
            if isinstance(sel, slice):
                start, stop, step = sel.indices(size)
                if step != 1:
                    raise ValueError("ChunkReader reads contiguous slices only")
            else:
                start = int(sel) + (size if int(sel) < 0 else 0)
                stop = start + 1
                squeeze.append(dim)
            starts.append(start)
            stops.append(max(stop, start))
        out = np.empty([b - a for a, b in zip(starts, stops, strict=True)], dtype=self.dtype)
        ranges = [
            range(a // c, (b - 1) // c + 1) if b > a else range(0)
            for a, b, c in zip(starts, stops, self.chunks, strict=True)
        ]
        for index in itertools.product(*ranges):
            src, dst = [], []
            for k, (i, c) in enumerate(zip(index, self.chunks, strict=True)):
                lo, hi = max(starts[k], i * c), min(stops[k], (i + 1) * c)
                src.append(slice(lo - i * c, hi - i * c))
                dst.append(slice(lo - starts[k], hi - starts[k]))
            if self._row_reads:
                # Only the needed rows of the chunk: (h, chunk_w) -> columns below.
                rows = self._rows(index, src[-2].start, src[-2].stop)
                out[tuple(dst)] = rows[:, src[-1]].reshape(out[tuple(dst)].shape)
            else:
                out[tuple(dst)] = self._chunk(index)[tuple(src)]
        return out.reshape([s for d, s in enumerate(out.shape) if d not in squeeze])


_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


class ChunkWriter(ChunkReader):
    """Direct writes of whole leading-index slices (one chip) of a Zarr v3 array whose
    chunks along the first axis hold one element (one chip per chunk)."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        super().__init__(path, meta)
        self._dirs: set[str] = set()  # chunk folders known to exist

    @classmethod
    def open(cls, path: str | Path) -> ChunkWriter | None:
        """A writer for the array at `path`, or None if its layout is not the supported one."""
        writer = super().open(path)
        if writer is None or writer.chunks[0] != 1:
            return None
        return writer  # type: ignore[return-value]

    def _encode(self, block: np.ndarray) -> bytes:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if not self.blosc:
            return block.tobytes()
        cfg = self.blosc_config
        return bytes(
            blosc.compress(
                block,
                str(cfg.get("cname", "lz4")).encode(),
                int(cfg.get("clevel", 5)),
                _SHUFFLE.get(str(cfg.get("shuffle", "shuffle")), 1),
                int(cfg.get("blocksize", 0)) or blosc.AUTOBLOCKS,
            )
        )

    def write(self, i: int, value: np.ndarray) -> None:
        """Write `value` (the array's shape without the first axis) at leading index i."""
        value = np.asarray(value, dtype=self.dtype)
        if value.shape != self.shape[1:]:
            raise ValueError(f"value of shape {value.shape} for slices of {self.shape[1:]}")
        grid = [
            range(-(-size // c)) for size, c in zip(self.shape[1:], self.chunks[1:], strict=True)
        ]
        for index in itertools.product(*grid):
            sel = tuple(
                slice(k * c, min((k + 1) * c, size))
                for k, c, size in zip(index, self.chunks[1:], self.shape[1:], strict=True)
            )
            block = value[sel]
            if block.shape != self.chunks[1:]:  # edge chunks are stored at full chunk shape
                full = np.full(self.chunks[1:], self.fill, dtype=self.dtype)
                full[tuple(slice(0, n) for n in block.shape)] = block
                block = full
            parts = (str(i), *map(str, index))
            folder = self._prefix + "/".join(parts[:-1])
            if folder not in self._dirs:
                os.makedirs(folder, exist_ok=True)
                self._dirs.add(folder)
            with open(os.path.join(folder, parts[-1]), "wb") as f:
                f.write(self._encode(block[None]))
