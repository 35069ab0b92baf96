"""Helpers shared by the raw-layout readers: band ordering, label coding, required modalities."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from floodlab.data.geotiff import (
    RasterInfo,
    check_aligned,
    nodata_mask,
    raster_info,
    read_raster,
)
from floodlab.data.sources.base import ChipRef
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


def require_modalities(refs: Sequence[ChipRef], required: Iterable[str], dataset: str) -> None:
    """Raise DataError for the first chip lacking a modality that the caller needs.

    Args:
        refs: listed chips.
        required: modality names, e.g. ("s1", "s2").
        dataset: dataset name, for the message.
    """
    needed = tuple(required)
    for ref in refs:
        missing = [m for m in needed if m not in ref.files]
        if missing:
            have = ", ".join(sorted(ref.files)) or "nothing"
            raise DataError(
                f"{dataset} chip {ref.id} has no {', '.join(missing)} file (it has {have}); "
                f"download the {', '.join(missing)} part of the dataset next to the others, "
                f"or convert without the band(s) that need {', '.join(missing)}."
            )
