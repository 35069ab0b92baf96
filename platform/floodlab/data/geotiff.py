"""Shared rasterio helpers: read rasters with nodata mapped, write atomically, check alignment."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.transform import Affine

from floodlab.errors import DataError
from floodlab.io import atomic_path
from floodlab.io import is_uri as _is_uri

log = logging.getLogger(__name__)

Transform = tuple[float, float, float, float, float, float]
IDENTITY: Transform = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

# Two rasters are co-registered when their origins agree to this fraction of a pixel and
# their pixel sizes to this relative tolerance. Real Sen1Floods11 chips differ in the 15th
# digit between S1Hand and LabelHand, so exact equality would reject real data.
_ORIGIN_TOL_PX = 0.01
_RES_REL_TOL = 1e-6


@dataclass(frozen=True)
class RasterInfo:
    """Georeferencing and encoding of one raster file.

    Attributes:
        path: the file read.
        crs: "EPSG:n" when the CRS is exactly an EPSG code, its WKT otherwise, "" if none.
        transform: the 6 affine coefficients (a, b, c, d, e, f); identity when absent.
        nodata: the file's nodata tag (None when untagged), e.g. NaN, 0, -99, -3.4e38.
        descriptions: one band description per band (None where the file has none).
        dtype: on-disk data type, e.g. "int16".
        count: number of bands.
        height: rows in pixels.
        width: columns in pixels.
    """

    path: str
    crs: str
    transform: Transform
    nodata: float | None
    descriptions: tuple[str | None, ...]
    dtype: str
    count: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units; x and y may differ (non-square pixels)."""
        a, b, _, d, e, _ = self.transform
        return (float(np.hypot(a, d)), float(np.hypot(b, e)))


def crs_to_string(crs: CRS | None) -> str:
    """'EPSG:n' for a CRS that is exactly an EPSG code, its WKT otherwise, '' for none."""
    if crs is None:
        return ""
    epsg = crs.to_epsg(confidence_threshold=100)
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def raster_info(path: str | Path) -> RasterInfo:
    """Read only the header of a raster (no pixels).

    Args:
        path: raster file.

    Returns:
        Its `RasterInfo`.

    Raises:
        DataError: the file is missing or not a readable raster.
    """
    with _open(path) as src:
        return _info(path, src)


def read_raster(
    path: str | Path,
    *,
    as_float: bool = False,
    extra_nodata: Sequence[float] = (),
    bands: Sequence[int] | None = None,
) -> tuple[np.ndarray, RasterInfo]:
    """Read all (or some) bands of a raster, band-sequential, whatever the file's interleave.

    Args:
        path: raster file (GeoTIFF or anything GDAL reads).
        as_float: return float32 with every nodata pixel (the file's tag, NaN, and
            `extra_nodata`) set to NaN. Otherwise the on-disk dtype is returned unchanged
            and `nodata_mask` finds the nodata pixels.
        extra_nodata: values to treat as nodata besides the file's tag (e.g. 0 for
            Sentinel-2 reflectance files that carry no tag).
        bands: 1-based band indexes to read; all bands when None.

    Returns:
        (array (C, H, W), info).

    Raises:
        DataError: naming the path when the file is missing, does not open, or a read fails.
    """
    with _open(path) as src:
        info = _info(path, src)
        try:
            arr = src.read(list(bands) if bands is not None else None)  # (C, H, W)
        except Exception as e:  # GDAL raises several unrelated classes on corrupt data
            raise DataError(
                f"{path}: pixels cannot be read ({e}); the file is truncated or corrupt — "
                "re-download it (or regenerate it with `floodlab synth`)."
            ) from e
    if as_float:
        mask = nodata_mask(arr, info.nodata, extra_nodata)
        arr = arr.astype(np.float32, copy=True)
        arr[mask] = np.nan
    return arr, info


def nodata_mask(
    arr: np.ndarray, nodata: float | None, extra_nodata: Sequence[float] = ()
) -> np.ndarray:
    """Boolean mask of nodata pixels: equal to the tag or an extra value, or NaN.

    Float comparisons are done in the array's own precision, so a float64 tag such as
    -3.3999999521443642e+38 matches the float32 pixels that carry it.
    """
    mask = np.isnan(arr) if arr.dtype.kind == "f" else np.zeros(arr.shape, dtype=bool)
    for value in (nodata, *extra_nodata):
        if value is None or np.isnan(value):
            continue
        if arr.dtype.kind == "f":
            mask |= np.isclose(arr, np.asarray(value, dtype=arr.dtype), rtol=1e-6, atol=0.0)
        elif _fits(value, arr.dtype):
            mask |= arr == value
    return mask


def check_aligned(a: RasterInfo, b: RasterInfo) -> None:
    """Raise DataError naming both files unless they share shape, CRS and pixel grid.

    Args:
        a: header of the first file (e.g. the S1 layer).
        b: header of the second file (e.g. the label).

    Raises:
        DataError: shapes, CRSs or transforms differ.
    """
    problem = ""
    if a.shape != b.shape:
        problem = f"shapes differ ({a.height}x{a.width} vs {b.height}x{b.width})"
    elif a.crs != b.crs and not _same_crs(a.crs, b.crs):
        problem = f"CRSs differ ({_short(a.crs)} vs {_short(b.crs)})"
    else:
        ta, tb = np.asarray(a.transform), np.asarray(b.transform)
        px = max(abs(ta[0]), abs(ta[4]), 1e-12)
        origin_off = max(abs(ta[2] - tb[2]), abs(ta[5] - tb[5])) / px
        res_off = np.max(np.abs(ta[[0, 1, 3, 4]] - tb[[0, 1, 3, 4]])) / px
        if origin_off > _ORIGIN_TOL_PX or res_off > _RES_REL_TOL:
            problem = f"pixel grids differ (transforms {a.transform} vs {b.transform})"
    if problem:
        raise DataError(
            f"{a.path} and {b.path} are not co-registered: {problem}. Both layers of a chip "
            "must cover the same pixels; re-export them on one grid or remove the chip."
        )


def write_raster(
    path: str | Path,
    array: np.ndarray,
    *,
    crs: str,
    transform: Sequence[float],
    nodata: float | None = None,
    descriptions: Sequence[str] | None = None,
    interleave: str = "band",
    compress: str | None = "deflate",
    creation_options: dict[str, Any] | None = None,
) -> Path:
    """Write a GeoTIFF atomically: to a hidden temporary name, then renamed into place.

    Args:
        path: destination file; parent folders are created.
        array: (C, H, W) or (H, W) pixels; the file takes the array's dtype.
        crs: "EPSG:n" or WKT; "" writes no CRS.
        transform: the 6 affine coefficients (a, b, c, d, e, f).
        nodata: nodata tag to write (None: untagged).
        descriptions: one band description per band.
        interleave: "band" or "pixel" (SEN12MS and CloudSEN12 files are pixel-interleaved).
        compress: GDAL compression, None for uncompressed.
        creation_options: more GDAL GeoTIFF creation options, e.g. {"zlevel": 1}.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = array[None] if array.ndim == 2 else array  # (C, H, W)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "transform": Affine(*transform[:6]),
        "interleave": interleave,
    }
    if crs:
        profile["crs"] = CRS.from_user_input(crs)
    if nodata is not None:
        profile["nodata"] = nodata
    if compress:
        profile["compress"] = compress
    profile.update(creation_options or {})
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        if descriptions is not None:
            for i, desc in enumerate(descriptions, start=1):
                dst.set_band_description(i, desc)
    return path


def is_uri(path: str | Path) -> bool:
    """True for a URI (https://, s3://, ...) or GDAL virtual path (/vsicurl/...): opened by
    GDAL itself, not looked up on the local disk."""
    return str(path).startswith("/vsi") or _is_uri(path)


def _open(path: str | Path) -> Any:
    if not is_uri(path) and not Path(path).is_file():
        raise DataError(f"{path}: file does not exist; check the dataset folder is complete.")
    try:
        return rasterio.open(path)
    except (RasterioError, OSError) as e:
        raise DataError(
            f"{path}: not a readable raster ({e}); re-download or regenerate the file."
        ) from e


def _info(path: str | Path, src: Any) -> RasterInfo:
    return RasterInfo(
        path=str(path),
        crs=crs_to_string(src.crs),
        transform=_as_transform(src.transform),
        nodata=None if src.nodata is None else float(src.nodata),
        descriptions=tuple(src.descriptions),
        dtype=str(src.dtypes[0]),
        count=int(src.count),
        height=int(src.height),
        width=int(src.width),
    )


def _as_transform(affine: Affine | None) -> Transform:
    """The 6 coefficients of an Affine; the identity for files without georeferencing."""
    if affine is None:
        return IDENTITY
    a, b, c, d, e, f = (float(v) for v in tuple(affine)[:6])
    return (a, b, c, d, e, f)


def _fits(value: float, dtype: np.dtype) -> bool:
    """True when an integer array of `dtype` can hold `value` exactly."""
    if float(value) != int(value):
        return False
    info = np.iinfo(dtype)
    return info.min <= int(value) <= info.max


def _same_crs(a: str, b: str) -> bool:
    if not a or not b:
        return False
    try:
        return bool(CRS.from_user_input(a) == CRS.from_user_input(b))
    except RasterioError:
        return False


def _short(crs: str) -> str:
    return crs if len(crs) < 40 else crs[:37] + "..."
