"""Windowed GeoTIFF I/O for scene prediction: band mapping, strip reads, atomic tiled writes."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from floodlab.bands import ALL_BANDS, DERIVED_BANDS, S1_BANDS
from floodlab.data.geotiff import check_aligned, nodata_mask, raster_info
from floodlab.data.units import MIN_VALUES, check_sar, sar_units
from floodlab.errors import DataError

log = logging.getLogger(__name__)

# Output nodata: outside [0, 1], so it cannot be mistaken for a probability, a mask value
# or a translated reflectance; the same value in every band and every output file.
OUTPUT_NODATA = 255.0
BLOCK = 256  # output tile side (pixels); writes are buffered to whole rows of tiles
# A SAR band's units are judged on the whole band up to this many pixels, else on a 3 x 3
# grid of UNITS_WINDOW-pixel windows spread over the scene (a few blocks, not a second
# pass over a large scene).
UNITS_WHOLE = 1024 * 1024
UNITS_WINDOW = 256
_KNOWN = {b.upper(): b for b in ALL_BANDS}


@dataclass(frozen=True)
class BandSource:
    """One band of one input file.

    Attributes:
        file: index into the input paths.
        band: 1-based band index in that file.
        name: band name (floodlab.bands) if known from a description, the file name or
            the user's list, else None.
        described: the band has a description that is not a band name (e.g. "blue");
            such a band is never matched by order.
    """

    file: int
    band: int
    name: str | None
    described: bool = False


def _name_from_filename(path: Path) -> str | None:
    """The one known band named by a token of a file's stem (``..._VV.tif``, ``VH.tif``)."""
    tokens = {t.upper() for t in re.split(r"[^A-Za-z0-9]+", path.stem) if t}
    hits = [_KNOWN[t] for t in tokens if t in _KNOWN]
    return hits[0] if len(hits) == 1 else None


def physical_bands(model_bands: Sequence[str], available: Sequence[str]) -> list[str]:
    """The bands to read for `model_bands`: each one itself, or its inputs if derived.

    A derived band (RATIO, MAGNITUDE, NDVI, NDWI) is read directly when an input names
    it, otherwise computed from its inputs.
    """
    needed: list[str] = []
    for band in model_bands:
        parts = DERIVED_BANDS[band] if band in DERIVED_BANDS and band not in available else (band,)
        needed.extend(p for p in parts if p not in needed)
    return needed


class SceneInputs:
    """The input rasters of one scene (one multi-band file or one file per band).

    All files must share size, CRS and transform. Bands are mapped to names from, in
    order of precedence: the user's list (`input_bands`, every band of every file in
    order), band descriptions, a band name in a single-band file's name; bands without
    any description are matched by order to the bands still missing, when the counts agree.

    SAR bands (VV, VH) are read as dB: `units` declares other input units ("linear",
    "amplitude"; see `floodlab.data.units`), which are converted; undeclared, the bands
    must look like dB (checked once per band on a decimated read, in `select`).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        input_bands: Sequence[str] | None = None,
        units: str | None = None,
    ):
        self.units = sar_units(units).name if units is not None else None
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise DataError("no input scene given; pass one multi-band GeoTIFF or one per band")
        for p in self.paths:
            if not p.is_file():
                raise DataError(
                    f"{p}: no such file; check the scene path (one GeoTIFF per argument)"
                )
        # Headers first: a file that is not a raster, or files on different grids, fail here.
        self.infos = [raster_info(p) for p in self.paths]
        for info in self.infos[1:]:
            check_aligned(self.infos[0], info)
        self._datasets: list[Any] = [rasterio.open(p) for p in self.paths]
        first = self._datasets[0]
        self.height, self.width = first.height, first.width
        self.crs, self.transform = first.crs, first.transform
        self.sources = self._name_bands(input_bands)
        self._plan: dict[str, BandSource] = {}

    def _name_bands(self, input_bands: Sequence[str] | None) -> list[BandSource]:
        sources = [
            BandSource(f, b, None)
            for f, info in enumerate(self.infos)
            for b in range(1, info.count + 1)
        ]
        if input_bands is not None:
            unknown = [b for b in input_bands if b not in ALL_BANDS]
            if unknown or len(input_bands) != len(sources):
                self.close()
                why = (
                    f"unknown band(s) {unknown}; known: {list(ALL_BANDS)}"
                    if unknown
                    else f"{len(input_bands)} names for {len(sources)} bands in {self._describe()}"
                )
                raise DataError(f"--bands {','.join(input_bands)}: {why}")
            return [
                BandSource(s.file, s.band, n) for s, n in zip(sources, input_bands, strict=True)
            ]
        named: list[BandSource] = []
        for s in sources:
            info = self.infos[s.file]
            desc = (info.descriptions[s.band - 1] or "").strip().upper()
            name = _KNOWN.get(desc)
            if name is None and info.count == 1 and not desc:
                name = _name_from_filename(self.paths[s.file])
            named.append(BandSource(s.file, s.band, name, described=bool(desc) and name is None))
        return named

    def _describe(self) -> str:
        return ", ".join(
            f"{p.name} ({info.count} band{'s' if info.count > 1 else ''}: "
            f"{[d or '-' for d in info.descriptions]})"
            for p, info in zip(self.paths, self.infos, strict=True)
        )

    def select(self, model_bands: Sequence[str]) -> list[str]:
        """Map the physical bands `model_bands` need to input bands; return their names.

        Raises:
            DataError: naming the expected bands and what the inputs hold.
        """
        available = [s.name for s in self.sources if s.name]
        needed = physical_bands(model_bands, available)
        by_name = {s.name: s for s in self.sources if s.name}
        plan = {b: by_name[b] for b in needed if b in by_name}
        missing = [b for b in needed if b not in plan]
        unnamed = [s for s in self.sources if s.name is None and not s.described]
        if missing and len(unnamed) == len(missing):
            plan.update(zip(missing, unnamed, strict=True))  # by order
        elif missing:
            self.close()
            raise DataError(
                f"scene bands: the model reads {list(model_bands)}, so the inputs must hold "
                f"{needed} (in this order when bands are unnamed), but {missing} could not be "
                f"found in {self._describe()}. Name bands by description, pass one file per "
                f"band named after it (VV.tif, VH.tif), or name every input band in file "
                f"order with --bands (e.g. --bands {','.join(needed)} for a {len(needed)}-band file)"
            )
        self._plan = {b: plan[b] for b in needed}
        log.info(
            "band mapping: %s",
            {b: f"{self.paths[s.file].name}#{s.band}" for b, s in self._plan.items()},
        )
        self._check_sar_units()
        return needed

    def _read_band(self, src: BandSource, **kwargs: Any) -> np.ndarray:
        """One band of one input (rasterio `read` keywords); DataError if it cannot be read."""
        try:
            return self._datasets[src.file].read(src.band, **kwargs)
        except (RasterioError, OSError) as e:
            raise DataError(
                f"{self.paths[src.file]}: reading band {src.band} failed ({e}); the file is "
                "truncated or corrupt: re-export or re-download it"
            ) from None

    def _units_sample(self, src: BandSource) -> np.ndarray:
        """Values of one band to judge its units by, in the file's dtype (1-D).

        The whole band for scenes up to UNITS_WHOLE pixels; else a 3 x 3 grid of
        windows, or a nearest-neighbour decimated read when those hold too little data.
        """
        ds = self._datasets[src.file]
        if ds.height * ds.width <= UNITS_WHOLE:
            return self._read_band(src).ravel()
        h, w = min(UNITS_WINDOW, ds.height), min(UNITS_WINDOW, ds.width)
        parts = [
            self._read_band(src, window=Window(int(x), int(y), w, h)).ravel()
            for y in np.linspace(0, ds.height - h, 3)
            for x in np.linspace(0, ds.width - w, 3)
        ]
        sample = np.concatenate(parts)
        if (~nodata_mask(sample, ds.nodata)).sum() >= MIN_VALUES:
            return sample
        side = int(np.sqrt(UNITS_WHOLE))
        shape = (min(ds.height, side), min(ds.width, side))
        return self._read_band(src, out_shape=shape, resampling=Resampling.nearest).ravel()

    def _check_sar_units(self) -> None:
        """Refuse SAR bands whose values cannot be in the declared (or expected dB) units.

        Judged once per scene on `_units_sample`, so the decision does not depend on
        which strip is read first.
        """
        for name, src in self._plan.items():
            if name not in S1_BANDS:
                continue
            ds = self._datasets[src.file]
            try:
                sample = self._units_sample(src)
                values = sample.astype(np.float32)
                values[nodata_mask(sample, ds.nodata)] = np.nan
                where = f"{self.paths[src.file]} band {src.band} ({name})"
                check_sar(values, dtype=ds.dtypes[src.band - 1], units=self.units, where=where)
            except DataError:
                self.close()
                raise

    def compressed_strips(self) -> list[Path]:
        """Inputs stored in compressed blocks as wide as the scene (a "striped" GeoTIFF).

        Reading part of such a row means decompressing all of it, so reading the scene
        in column bands would decompress every row once per band.
        """
        return [
            path
            for path, ds in zip(self.paths, self._datasets, strict=True)
            if ds.compression is not None and ds.block_shapes[0][1] >= ds.width
        ]

    def read_tile(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Read the selected bands at (reflected) scene rows and columns.

        Only the block ``[rows.min(), rows.max()] x [cols.min(), cols.max()]`` is read
        from disk (one rasterio window); reflection is a gather on that block.

        Args:
            rows: (h,) scene row indices in range.
            cols: (w,) scene column indices in range.

        Returns:
            (C, h, w) float32 physical values in `select` order, NaN at nodata; SAR
            bands in dB (converted from the declared `units`).
        """
        r0, r1 = int(rows.min()), int(rows.max()) + 1
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        window = Window(c0, r0, c1 - c0, r1 - r0)
        out = np.empty((len(self._plan), len(rows), len(cols)), dtype=np.float32)
        to_db = sar_units(self.units).convert
        for c, (name, src) in enumerate(self._plan.items()):
            ds = self._datasets[src.file]
            block = self._read_band(src, window=window)  # (r1 - r0, c1 - c0), file dtype
            values = block.astype(np.float32)
            values[nodata_mask(block, ds.nodata) | ~np.isfinite(values)] = np.nan
            if name in S1_BANDS:
                values = to_db(values)
            out[c] = values[np.ix_(rows - r0, cols - c0)]
        return out

    def close(self) -> None:
        """Close every open file."""
        for ds in self._datasets:
            ds.close()
        self._datasets = []

    def __enter__(self) -> SceneInputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SceneWriter:
    """A float32 GeoTIFF written in column bands, row block by row block, to a temporary name.

    `commit` renames it into place (converting to a Cloud-Optimised GeoTIFF first when
    asked); `discard` removes it. Nothing is left at the final path unless `commit` ran.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        crs: Any,
        transform: Affine,
        descriptions: Sequence[str],
        tags: Mapping[str, str] | None = None,
        cog: bool = False,
    ):
        self.path, self.cog = Path(path), cog
        self.width, self.height, self.count = width, height, len(descriptions)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        # Rows of the open column band not yet written: one row of its output tiles at
        # most, filled in place (allocated for the widest column band seen).
        self._rows = np.empty((self.count, min(BLOCK, height), 0), dtype=np.float32)
        self._cols_done = 0  # columns of the column bands finished: the open one starts here
        self._band_width = 0  # columns of the open column band (0: none open)
        self._written = 0  # rows of the open column band written
        self._filled = 0  # rows of it in the buffer
        profile = {
            "driver": "GTiff",
            "dtype": "float32",
            "count": self.count,
            "width": width,
            "height": height,
            "crs": crs,
            "transform": transform,
            "nodata": OUTPUT_NODATA,
            "tiled": True,
            "blockxsize": BLOCK,
            "blockysize": BLOCK,
            "compress": "deflate",
            "predictor": 3,  # floating-point predictor: much better deflate on smooth maps
            "bigtiff": "IF_SAFER",
            "num_threads": "ALL_CPUS",  # parallel tile compression
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ds = rasterio.open(self._tmp, "w", **profile)
        for i, d in enumerate(descriptions, start=1):
            self._ds.set_band_description(i, d)
        if tags:
            self._ds.update_tags(**tags)

    def write_rows(self, values: np.ndarray | Sequence[np.ndarray], col: int = 0) -> None:
        """Append the next rows of the column band that starts at column `col`.

        `values` is (count, n, w) float32, or `count` (n, w) arrays, NaN at nodata.
        Column bands come left to right, each from the first row to the last (a band as
        wide as the file: whole rows). A column band's rows are gathered into one row of
        its output tiles and written when that is complete (or the band ends), so with
        band edges on multiples of `BLOCK` no compressed tile is ever rewritten (which
        would bloat the file), and at most `BLOCK` rows of one band are held. Arrays
        given one per output band are copied straight into that buffer, with no stacked
        copy of the rows.
        """
        planes = list(values)
        n, width = planes[0].shape
        if col != self._cols_done or width != (self._band_width or width):
            raise ValueError(
                f"{self.path}: rows at column {col} ({width} wide) while the column band at "
                f"column {self._cols_done} ({self._band_width} wide) has "
                f"{self._written + self._filled} of {self.height} rows"
            )
        self._band_width = width
        if self._rows.shape[2] < width:
            self._rows = np.empty((self.count, self._rows.shape[1], width), np.float32)
        done = 0
        while done < n:
            take = min(self._rows.shape[1] - self._filled, n - done)
            for target, plane in zip(self._rows, planes, strict=True):
                rows = target[self._filled : self._filled + take, :width]
                np.copyto(rows, plane[done : done + take])
                rows[np.isnan(rows)] = OUTPUT_NODATA
            self._filled += take
            done += take
            if self._filled == self._rows.shape[1] or self._written + self._filled == self.height:
                self._ds.write(
                    self._rows[:, : self._filled, :width],
                    window=Window(self._cols_done, self._written, width, self._filled),
                )
                self._written += self._filled
                self._filled = 0
        if self._written == self.height:  # the column band is complete
            self._cols_done += width
            self._band_width = self._written = 0

    def commit(self) -> Path:
        """Finish the file and move it to its final path (atomically)."""
        if self._cols_done != self.width:
            raise RuntimeError(f"{self.path}: {self._cols_done} of {self.width} columns written")
        self._ds.close()
        src = self._tmp
        if self.cog:
            cog_tmp = self.path.with_name(f".{self.path.name}.cog.partial")
            rasterio.shutil.copy(
                self._tmp,
                cog_tmp,
                driver="COG",
                compress="DEFLATE",
                predictor="YES",
                blocksize=512,
                overview_resampling="NEAREST",  # keeps the mask band binary in overviews
                bigtiff="IF_SAFER",
            )
            self._tmp.unlink()
            src = cog_tmp
        os.replace(src, self.path)
        return self.path

    def discard(self) -> None:
        """Close and delete the temporary file(s)."""
        if not self._ds.closed:
            self._ds.close()
        for p in (self._tmp, self.path.with_name(f".{self.path.name}.cog.partial")):
            p.unlink(missing_ok=True)
