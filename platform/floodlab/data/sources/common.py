"""Helpers shared by the raw-layout readers: band ordering, label coding, a chip's layers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from floodlab.bands import S2_BANDS
from floodlab.data.geotiff import (
    RasterInfo,
    check_aligned,
    nodata_mask,
    raster_info,
    read_raster,
)
from floodlab.data.sources.base import Chip, ChipRef
from floodlab.data.units import sar_to_db
from floodlab.errors import DataError


def band_indexes(info: RasterInfo, names: Sequence[str]) -> list[int]:
    """1-based band indexes that read `names` in order from a file.

    Files whose band descriptions are exactly the expected names (in any order) are read
    by name; undescribed files must have one band per name and are read in file order.

    Raises:
        DataError: the band count does not match and the descriptions do not name the bands.
    """
    desc = list(info.descriptions)
    if all(d is not None for d in desc) and set(names) <= set(desc):
        return [desc.index(n) + 1 for n in names]
    if info.count != len(names):
        raise DataError(
            f"{info.path}: has {info.count} band(s), expected {len(names)} ({', '.join(names)}); "
            "check the file belongs to this layer of the dataset."
        )
    return list(range(1, len(names) + 1))


def read_float(
    path: str | Path, names: Sequence[str], extra_nodata: Sequence[float] = ()
) -> tuple[np.ndarray, RasterInfo]:
    """Read the bands `names` of a file as float32 (C, H, W) with every nodata pixel NaN."""
    info = raster_info(path)
    arr, info = read_raster(
        path, as_float=True, extra_nodata=extra_nodata, bands=band_indexes(info, names)
    )
    return arr, info


def read_reflectance(path: str | Path) -> tuple[np.ndarray, RasterInfo]:
    """Read the 13 S2 bands (`S2_BANDS`) of a file as float32 reflectance, 0 -> NaN.

    Reflectance 0 is nodata whether or not the file tags it (int16 or uint16 files).
    """
    return read_float(path, S2_BANDS, extra_nodata=(0,))


def read_sar(
    path: str | Path,
    names: Sequence[str],
    units: str | None,
    bands: Sequence[str] | None = None,
) -> tuple[np.ndarray, RasterInfo]:
    """Read SAR bands as float32 dB (C, H, W), NaN at nodata, via `floodlab.data.units`.

    Args:
        path: the SAR file.
        names: the bands to read (see `band_indexes`).
        units: declared input units (`--units`), or None: dB expected and checked.
        bands: band names for messages (default `names`), e.g. ("VV",) for `S1_VV`.

    Raises:
        UnitsError: a band whose values cannot be in `units`, naming the file and band.
    """
    arr, info = read_float(path, names)
    db = sar_to_db(arr, bands or names, dtype=info.dtype, units=units, where=str(path))
    return db, info


def read_label(
    path: str | Path, valid: Iterable[int] = (0, 1), band: int = 1
) -> tuple[np.ndarray, RasterInfo]:
    """Read a label band as int8 (H, W): valid class values kept, everything else -1.

    Nodata (tagged or NaN), -1 and any value outside `valid` become -1 (invalid), so files
    that mark invalid pixels with -1 and no tag (Sen1Floods11) or with a tag (255, 0, ...)
    read the same.
    """
    arr, info = read_raster(path, bands=[band])
    arr = arr[0]  # (H, W)
    invalid = nodata_mask(arr, info.nodata)
    out = np.full(arr.shape, -1, dtype=np.int8)
    for v in valid:
        out[(arr == v) & ~invalid] = v
    return out, info


def check_all_aligned(infos: Sequence[RasterInfo]) -> None:
    """Check every layer of a chip against the first; DataError naming the two files."""
    for other in infos[1:]:
        check_aligned(infos[0], other)


@dataclass
class ChipLayers:
    """The layers of one chip as a reader reads them, checked co-registered by `chip`.

    Attributes:
        arrays: chip array name -> array, in the order added.
        bands: chip array name -> band names, for the band layers.
        infos: the file of every layer read, the first one georeferencing the chip.
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    bands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    infos: list[RasterInfo] = field(default_factory=list)

    def add(
        self, key: str, read: tuple[np.ndarray, RasterInfo], bands: tuple[str, ...] | None = None
    ) -> None:
        """Keep a layer read from one file (`bands` names its channels)."""
        array, info = read
        self.arrays[key] = array
        if bands is not None:
            self.bands[key] = bands
        self.infos.append(info)

    def add_stack(
        self, key: str, reads: Sequence[tuple[np.ndarray, RasterInfo]], bands: tuple[str, ...]
    ) -> None:
        """Keep a layer stored one band per file: the (1, H, W) reads stacked to (C, H, W)."""
        self.arrays[key] = np.stack([array[0] for array, _ in reads])
        self.bands[key] = bands
        self.infos += [info for _, info in reads]

    def chip(self, ref: ChipRef, **meta: Any) -> Chip:
        """The chip, georeferenced as its first layer; DataError naming two files that are
        not co-registered."""
        check_all_aligned(self.infos)
        first = self.infos[0]
        return Chip(
            ref=ref,
            arrays=self.arrays,
            bands=self.bands,
            crs=first.crs,
            transform=first.transform,
            meta=meta,
        )


def repeated_ids(refs: Sequence[ChipRef]) -> list[str]:
    """The first three chip ids (sorted) that more than one chip has, for a message."""
    counts = Counter(r.id for r in refs)
    return sorted(i for i, n in counts.items() if n > 1)[:3]
