"""Read-only access to a converted Zarr v3 store: band names, splits, statistics, windows.

Layout (written by `floodlab.data.convert.pipeline`; N chips of H x W pixels, one chip per chunk
along N):

==============  ===============  =========  ===============================================
array           shape            dtype      content
==============  ===============  =========  ===============================================
s1              (N, 2, H, W)     float32    VV, VH backscatter in dB, NaN at nodata
s2              (N, 13, H, W)    uint16     reflectance x10000, 0 at nodata (see below)
aux             (N, C, H, W)     float32    DeepFlood SLOPE, DTM, NaN at nodata
derived         (N, k, H, W)     float32    RATIO/MAGNITUDE/NDVI/NDWI, names in attrs
label           (N, H, W)        int8       hand (or the dataset's only) label, -1 invalid
label_weak      (N, H, W)        int8       weak (Otsu) label, -1 invalid
valid           (N, H, W)        bool       chip's own label >= 0 and its input not NaN
lc              (N, 4, H, W)     uint16     SEN12MS land-cover layers, raw classes
cloud           (N, H, W)        uint8      CloudSEN12 raw classes (0 clear .. 3 shadow)
id, group,      (N,)             string     chip id, event/scene, split name, "hand"/"weak",
split,                                      CRS ("EPSG:n" or WKT, as the reader gives it);
label_source,                               split "skipped" marks chips whose source was
crs                                         unreadable (listed in provenance)
transform       (N, 6)           float64    affine (a, b, c, d, e, f) of rasterio
present         (N, M)           bool       which modality the source had for each chip
==============  ===============  =========  ===============================================

`s2` is uint16 with 0 as nodata: every Sentinel-2 source is integer reflectance x10000
(Sen1Floods11 int16, SEN12MS/CloudSEN12 uint16) with 0 already meaning nodata, so uint16
is lossless and half the bytes of float32 (faster random reads); readers here get float32
with NaN. Chips missing a modality hold its nodata value there and `present` is False.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from floodlab.bands import DERIVED_BANDS
from floodlab.data.derive import derive_stack, inputs_of
from floodlab.data.load.reads import ArraySelection, ChipReads, Window
from floodlab.errors import DataError, DatasetNotFoundError
from floodlab.storage import ROOT_DOCUMENT, is_remote, join, local_path, read_bytes, storage_errors

log = logging.getLogger(__name__)

STORE_FORMAT = 1  # bumped when the layout changes incompatibly
IMAGE_MODALITIES: tuple[str, ...] = ("s1", "s2", "aux", "derived")  # (N, C, H, W) band arrays
LABEL_ARRAYS: tuple[str, ...] = ("label", "label_weak")  # (N, H, W) int8, -1 invalid
SKIPPED_SPLIT = "skipped"


def missing_store_message(path: str | Path, dataset: str | None = None) -> str:
    """The paragraph that says a store is missing and which commands create it."""
    ds = dataset or "<dataset>"
    return (
        f"no converted Zarr store at {path}. Create it from the raw dataset with "
        f"`floodlab convert {ds} <raw-folder> --out {path}`, or from synthetic raw data with "
        f"`floodlab synth {ds} --out {path}.raw && floodlab convert {ds} {path}.raw --out {path}`"
        " (or set data.synthetic in the spec so training creates it)."
    )


def _string_column(name: str, doc: str) -> cached_property[np.ndarray]:
    """A `Store` attribute: its per-chip string array `name`, read on first access."""

    def read(store: Store) -> np.ndarray:
        return strings(store.array(name))

    read.__doc__ = doc
    return cached_property(read)


class Store:
    """A complete converted store, opened lazily and read-only.

    Attributes:
        path: the store folder, or its URL on object storage (`floodlab.storage`).
        group: the root Zarr group.
        direct_reads: whether chunk files are read directly (see `open_store`; never on
            object storage).
    """

    def __init__(self, path: str | Path, *, direct_reads: bool = True):
        self.path: Path | str
        if is_remote(path):
            # Object storage: zarr reads through fsspec (the direct chunk reads need files).
            self.path, self.direct_reads = str(path).rstrip("/"), False
            if read_bytes(join(self.path, ROOT_DOCUMENT)) is None:
                raise DatasetNotFoundError(missing_store_message(self.path))
            with storage_errors(self.path, "open the store"):
                self.group = zarr.open_group(self.path, mode="r")
        else:
            self.path, self.direct_reads = local_path(path), direct_reads
            if not self.path.exists():
                raise DatasetNotFoundError(missing_store_message(self.path))
            try:
                if not self.path.is_dir():
                    raise NotADirectoryError(self.path)
                self.group = zarr.open_group(str(self.path), mode="r")
            except Exception:  # zarr raises several types for a non-store folder
                from floodlab.data.identify import not_a_store_message

                raise DataError(not_a_store_message(self.path)) from None
        attrs = dict(self.group.attrs)
        if attrs.get("floodlab_store") != STORE_FORMAT or not attrs.get("complete"):
            raise DataError(
                f"{self.path}: not a complete floodlab store (format "
                f"{attrs.get('floodlab_store')}, complete={attrs.get('complete')}); "
                "re-run `floodlab convert` to finish or rewrite it"
            )
        self.attrs: dict[str, Any] = attrs
        self._plans: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self._reads = ChipReads(self.path, self.group, self.chip_shape, direct_reads)

    # -- metadata ---------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.attrs["num_chips"])

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, dataset={self.dataset!r}, chips={len(self)})"

    @property
    def dataset(self) -> str:
        """The source dataset name (sen1floods11, sen12ms, ...)."""
        return str(self.attrs["dataset"])

    @property
    def sar_units(self) -> str:
        """Units of the stored SAR bands: "dB", or e.g. "scaled_0_255" (per-patch stretched)."""
        units = self.attrs.get("provenance", {}).get("sar_units") or {}
        return str(units.get("stored", "dB"))

    @property
    def chip_shape(self) -> tuple[int, int]:
        """(H, W) of every chip in pixels."""
        h, w = self.attrs["chip_shape"]
        return int(h), int(w)

    @property
    def modalities(self) -> list[str]:
        """Arrays holding chip data (s1, s2, label, ...), in store order."""
        return list(self.attrs["modalities"])

    def has(self, name: str) -> bool:
        """True if the store has the chip-data array `name` (s1, s2, label, ...)."""
        return name in self.attrs["modalities"]

    def bands(self, modality: str) -> tuple[str, ...]:
        """Band names of a modality's channels (empty for (N, H, W) arrays)."""
        if modality not in self.attrs["modalities"]:
            raise DataError(
                f"{self.path}: no modality '{modality}'; the store has {self.modalities}"
            )
        return tuple(self.attrs["modalities"][modality]["bands"])

    @cached_property
    def _band_index(self) -> dict[str, tuple[str, int]]:
        """band -> (modality, channel) for stored bands (the first modality wins)."""
        index: dict[str, tuple[str, int]] = {}
        for mod in IMAGE_MODALITIES:
            if mod in self.attrs["modalities"]:
                for c, band in enumerate(self.attrs["modalities"][mod]["bands"]):
                    index.setdefault(band, (mod, c))
        return index

    def stored_bands(self) -> list[str]:
        """Bands held in arrays (s1, s2, aux, derived)."""
        return list(self._band_index)

    @cached_property
    def _available(self) -> tuple[str, ...]:
        out = self.stored_bands()
        for band in DERIVED_BANDS:
            if band not in out and all(b in self._band_index for b in inputs_of(band)):
                out.append(band)
        return tuple(out)

    def available_bands(self) -> list[str]:
        """Stored bands plus derived bands whose inputs are stored."""
        return list(self._available)

    def check_bands(self, bands: Sequence[str], field: str = "bands") -> None:
        """DataError listing the available bands if any of `bands` cannot be read."""
        avail = self.available_bands()
        missing = [b for b in bands if b not in avail]
        if missing:
            raise DataError(
                f"{field}: band(s) {missing} are not in store {self.path} "
                f"(dataset {self.dataset}); available bands: {avail}"
            )

    def has_stats(self, band: str) -> bool:
        """True if the store holds training-split statistics of `band`."""
        return band in self.attrs.get("stats", {})

    def stats(self, band: str) -> dict[str, Any]:
        """Training-split statistics of a band: mean, std, p1, p2, p50, p98, p99, min, max,
        count (valid pixels), in physical units."""
        stats = self.attrs.get("stats", {})
        if band not in stats:
            raise DataError(
                f"{self.path}: no statistics for band '{band}' (have: {sorted(stats)}); "
                f"re-convert with `--derive {band}` if it is a derived band"
            )
        return dict(stats[band])

    # -- per-chip metadata --------------------------------------------------------------
    ids = _string_column("id", "(N,) chip ids.")
    groups = _string_column("group", "(N,) event/scene of each chip (splits never divide a group).")
    splits = _string_column(
        "split", '(N,) split of each chip ("train", "val", "test", ..., "skipped").'
    )
    label_sources = _string_column(
        "label_source", '(N,) "hand" or "weak": which label array holds the chip\'s label.'
    )
    _crs = _string_column("crs", "(N,) CRS of each chip as WKT.")

    @cached_property
    def _transform(self) -> np.ndarray:
        return np.asarray(self.array("transform")[:], dtype=np.float64)

    @cached_property
    def present(self) -> dict[str, np.ndarray]:
        """modality -> (N,) bool: whether the source had that modality for each chip."""
        table = np.asarray(self.array("present")[:], dtype=bool)
        return {m: table[:, j] for j, m in enumerate(self.attrs["present_columns"])}

    def band_present(self, band: str) -> np.ndarray:
        """(N,) bool: chips whose source had the data of `band` (derived: all its inputs)."""
        self.check_bands([band])
        sources = list(inputs_of(band)) if band in DERIVED_BANDS else [band]
        out = np.ones(len(self), dtype=bool)
        for src in sources:
            if src in self._band_index and self._band_index[src][0] in self.present:
                out &= self.present[self._band_index[src][0]]
        return out

    def split_names(self) -> list[str]:
        """Split names present in the store (without "skipped")."""
        return [s for s in self.attrs.get("split_counts", {}) if s != SKIPPED_SPLIT]

    def split_indices(self, split: str) -> np.ndarray:
        """Sorted chip indices of a split; DataError naming the splits if it is empty."""
        idx = np.flatnonzero(self.splits == split).astype(np.int64)
        if idx.size == 0:
            raise DataError(
                f"{self.path}: split '{split}' has no chips; the store's splits are "
                f"{self.attrs.get('split_counts', {})} (set data.train_split/val_split/"
                "test_split to one of them)"
            )
        return idx

    def crs(self, i: int) -> str:
        """CRS of chip i as WKT."""
        return str(self._crs[i])

    def transform(self, i: int) -> tuple[float, float, float, float, float, float]:
        """Affine coefficients (a, b, c, d, e, f) of chip i (rasterio.Affine(*t))."""
        return tuple(float(v) for v in self._transform[i])  # type: ignore[return-value]

    # -- pixels ---------------------------------------------------------------------------
    def array(self, name: str) -> zarr.Array:
        """The raw Zarr array `name` (cached handle)."""
        return self._reads.array(name)

    def read_raw(
        self, i: int, arrays: ArraySelection, window: Window | None = None
    ) -> dict[str, np.ndarray]:
        """Read several arrays of chip i, in stored dtype/units: `ChipReads.read`, whose
        `arrays` may come from `plan_bands`."""
        return self._reads.read(i, arrays, window)

    def to_physical(self, modality: str, raw: np.ndarray) -> np.ndarray:
        """Stored values -> float32 physical units with NaN at nodata (s2: 0 -> NaN)."""
        out = raw.astype(np.float32, copy=True)
        if self.attrs["modalities"][modality].get("nodata") == 0:
            out[raw == 0] = np.nan
        return out

    def plan_bands(self, bands: Sequence[str]) -> dict[str, list[int]]:
        """The arrays and channels needed to read `bands` (stored or derived on the fly).

        Returns:
            modality -> sorted channel indices, for `read_raw` and `bands_from_raw`.
        """
        key = tuple(bands)
        if key not in self._plans:
            self.check_bands(bands)
            needed: dict[str, set[int]] = {}
            for b in bands:
                for src in [b] if b in self._band_index else list(inputs_of(b)):
                    mod, c = self._band_index[src]
                    needed.setdefault(mod, set()).add(c)
            self._plans[key] = {m: sorted(cs) for m, cs in needed.items()}
        return {m: list(cs) for m, cs in self._plans[key].items()}

    def bands_from_raw(
        self,
        raw: Mapping[str, np.ndarray],
        bands: Sequence[str],
        plan: Mapping[str, Sequence[int]] | None = None,
    ) -> np.ndarray:
        """Assemble (C, h, w) float32 physical bands from arrays read by `read_raw`.

        Args:
            raw: `read_raw` output.
            bands: band names to assemble.
            plan: the channel plan `raw` was read with (None: arrays hold every channel).
        """
        phys: dict[str, np.ndarray] = {}

        def get(band: str) -> np.ndarray:
            if band not in phys:
                mod, c = self._band_index[band]
                pos = list(plan[mod]).index(c) if plan is not None else c
                phys[band] = self.to_physical(mod, raw[mod][pos])
            return phys[band]

        out = [
            get(b) if b in self._band_index else derive_stack([b], get)[0] for b in bands
        ]  # stored bands are read; derived ones not stored are computed from their inputs
        return np.stack(out).astype(np.float32, copy=False)

    def read_bands(
        self, i: int, bands: list[str] | tuple[str, ...], window: Window | None = None
    ) -> np.ndarray:
        """Bands of chip i by name across modalities, in physical units.

        Args:
            i: chip index.
            bands: band names (floodlab.bands); derived bands not stored are computed
                on the fly with `floodlab.data.derive`.
            window: (y0, x0, h, w) in pixels; default the whole chip.

        Returns:
            (C, h, w) float32: dB for SAR, reflectance x10000 for optical, NaN at nodata.
        """
        plan = self.plan_bands(bands)
        return self.bands_from_raw(self.read_raw(i, plan, window), bands, plan)


def strings(array: zarr.Array) -> np.ndarray:
    """A Zarr string array as a numpy unicode array (Zarr returns numpy StringDType)."""
    return np.asarray(np.asarray(array[:]).tolist(), dtype=str)


def open_store(path: str | Path, *, direct_reads: bool = True) -> Store:
    """Open a complete store read-only (lazy: pixels are read on demand).

    Args:
        path: the store folder, or its URL on object storage (s3://..., read through
            zarr's fsspec store; see `floodlab.storage`).
        direct_reads: read chunk files directly where the layout allows
            (floodlab.data.chunks); False reads everything through zarr-python.

    Raises:
        DatasetNotFoundError: nothing at `path` (the message gives the commands that make it).
        DataError: `path` is not a complete floodlab store.
        StorageError: object storage that cannot be reached.
    """
    if is_remote(path):
        return Store(path, direct_reads=False)
    p = local_path(path)
    if not p.exists():
        partial = p.with_name(p.name + ".partial")
        extra = (
            f" A partial conversion exists at {partial}; re-run the same `floodlab convert` "
            "command to resume it."
            if partial.exists()
            else ""
        )
        raise DatasetNotFoundError(missing_store_message(p) + extra)
    return Store(p, direct_reads=direct_reads)


def read_attrs(path: str | Path) -> dict[str, Any]:
    """Root attributes of any store folder (complete or partial), {} if unreadable."""
    location = str(path) if is_remote(path) else str(local_path(path))
    try:
        return json.loads(json.dumps(dict(zarr.open_group(location, mode="r").attrs)))
    except Exception:  # a missing or foreign folder simply has no floodlab attributes
        return {}
