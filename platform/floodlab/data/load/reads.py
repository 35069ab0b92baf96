"""Pixel reads of one chip from a store: the converter's chunk files directly, the rest via zarr.

zarr-python routes every chunk through its asyncio I/O and codec thread pools, which for
a training patch (a few small chunks) costs far more than the read itself
(benchmarks/loader.py). Arrays in the converter's layout are therefore read straight from
their chunk files (`floodlab.data.chunks`), band by band so that only the needed bands
are read; anything else goes through zarr in one concurrent request per sample.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from floodlab.data.chunks import ChunkReader
from floodlab.errors import DataError

Window = tuple[int, int, int, int]  # (y0, x0, h, w) in pixels
# The arrays of a read: names (all channels), or name -> channel indices (None: all
# channels or a label-like array).
ArraySelection = Sequence[str] | Mapping[str, Sequence[int] | None]


class ChipReads:
    """Reads windows of chips from the arrays of one open store.

    Args:
        path: the store folder (a URL on object storage, where `direct_reads` is False).
        group: its root Zarr group.
        chip_shape: (H, W) of every chip.
        direct_reads: read chunk files directly where the layout allows.
    """

    def __init__(
        self, path: Path | str, group: zarr.Group, chip_shape: tuple[int, int], direct_reads: bool
    ):
        self.path, self.group, self.chip_shape = path, group, chip_shape
        self.direct_reads = direct_reads
        self._arrays: dict[str, zarr.Array] = {}
        self._chunk_readers: dict[str, ChunkReader | None] = {}

    def array(self, name: str) -> zarr.Array:
        """The raw Zarr array `name` (cached handle)."""
        if name not in self._arrays:
            try:
                self._arrays[name] = self.group[name]  # type: ignore[assignment]
            except KeyError:
                raise DataError(
                    f"{self.path}: no array '{name}'; the store has {sorted(self.group.keys())}"
                ) from None
        return self._arrays[name]

    def selection(self, i: int, window: Window | None, ndim: int) -> tuple[Any, ...]:
        """The index of chip i's `window` in an array of `ndim` dimensions."""
        if window is None:
            ys, xs = slice(None), slice(None)
        else:
            y0, x0, h, w = window
            H, W = self.chip_shape
            if y0 < 0 or x0 < 0 or h <= 0 or w <= 0 or y0 + h > H or x0 + w > W:
                raise ValueError(f"window {window} outside the {H}x{W} chip")
            ys, xs = slice(y0, y0 + h), slice(x0, x0 + w)
        return (int(i), slice(None), ys, xs) if ndim == 4 else (int(i), ys, xs)

    def _direct(self, name: str) -> ChunkReader | None:
        """The direct chunk reader of array `name` (None: read through zarr)."""
        if name not in self._chunk_readers:
            direct = ChunkReader.open(Path(self.path) / name) if self.direct_reads else None
            self._chunk_readers[name] = direct
        return self._chunk_readers[name]

    def read(
        self, i: int, arrays: ArraySelection, window: Window | None = None
    ) -> dict[str, np.ndarray]:
        """Read several arrays of chip i, in stored dtype/units.

        Args:
            i: chip index.
            arrays: array names (all channels), or name -> channel indices to read (None:
                all channels or a label-like array).
            window: (y0, x0, h, w) in pixels; default the whole chip.

        Returns:
            name -> (C, h, w) for band arrays (the requested channels, in that order),
            (h, w) for label-like arrays.

        Raises:
            DataError: the store disappeared while in use, or an array is missing.
        """
        wanted = dict(arrays) if isinstance(arrays, Mapping) else dict.fromkeys(arrays)
        out: dict[str, np.ndarray] = {}
        slow: list[str] = []
        for name, channels in wanted.items():
            fast = self._direct(name)
            if fast is None:
                slow.append(name)
            elif channels is not None and len(fast.shape) == 4:
                y, x = self.selection(i, window, 4)[2:]
                out[name] = np.stack([fast.read((int(i), int(c), y, x)) for c in channels])
            else:
                out[name] = fast.read(self.selection(i, window, len(fast.shape)))
        if slow:
            # zarr reads a missing chunk as its fill value: make sure the store is still there.
            if isinstance(self.path, Path) and not (self.path / "zarr.json").is_file():
                raise DataError(
                    f"{self.path}: the store disappeared while in use (deleted, moved or "
                    "unmounted); restore it or re-run `floodlab convert`, then start again"
                )
            zarrays = [self.array(n) for n in slow]
            sels = [self.selection(i, window, a.ndim) for a in zarrays]

            async def gather() -> list[Any]:
                return await asyncio.gather(
                    *[a.async_array.getitem(s) for a, s in zip(zarrays, sels, strict=True)]
                )

            # One round trip to zarr's I/O loop for every such array of the sample.
            for n, r in zip(slow, sync(gather()), strict=True):
                channels = wanted[n]
                r = np.asarray(r)
                out[n] = r[list(channels)] if channels is not None and r.ndim == 3 else r
        return {n: out[n] for n in wanted}
