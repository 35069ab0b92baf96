"""The contract every raw-layout reader fulfils: list chip references cheaply, read one chip.

Listing is cheap and happens on the driver; reading is per chip so a Dask graph can read
chips in parallel. Readers never normalise values: they return physical units with
nodata mapped to NaN (floats) or to the `valid` semantics of labels (-1 = invalid).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class ChipRef:
    """A chip before it is read: id, group (event/scene, splits never divide a group),
    official split if the dataset has one, and the files per modality."""

    id: str
    group: str
    split: str | None
    files: dict[str, tuple[str, ...]]


@dataclass
class Chip:
    """One co-registered chip in physical units.

    Attributes:
        arrays: modality -> array. Conventions (all (C, H, W) unless noted):
            "s1": float32 dB, bands S1_BANDS order, NaN at nodata;
            "s2": float32 TOA/BOA reflectance x10000, S2_BANDS order, NaN at nodata;
            "label": int8 (H, W), -1 invalid, 0 dry/clear, 1 water/cloud;
            "label_weak": int8 (H, W) weak (Otsu) label, same coding;
            "lc": uint8/uint16 (4, H, W) SEN12MS land cover; "cloud": uint8 (H, W) raw
            CloudSEN12 classes 0..3; "aux": float32 (C, H, W) DeepFlood SLOPE, DTM
            (SAR-KD: NDVI, NDWI).
            A chip holds only the modalities its files provide (weak Sen1Floods11 chips
            have no "s2"; a SEN12MS patch may lack "s2").
        bands: modality -> band names of its channels; always read by name, since a
            reader may return a subset in canonical order (SAR-KD "s2" is B2, B3, B4).
        crs: CRS as WKT (or "EPSG:n").
        transform: the 6 GDAL/affine coefficients (a, b, c, d, e, f) of rasterio's Affine.
        meta: anything else worth keeping (label source "hand"/"weak", source paths).
    """

    ref: ChipRef
    arrays: dict[str, np.ndarray]
    bands: dict[str, tuple[str, ...]]
    crs: str
    transform: tuple[float, float, float, float, float, float]
    meta: dict[str, Any] = field(default_factory=dict)


class SourceReader(abc.ABC):
    """Reads one raw dataset layout under `root`.

    A reader's options are the keyword-only parameters of its `__init__` (with their
    defaults); `floodlab.data.sources.reader_options` lists them for error messages.
    """

    # The dataset's name; the reader's module registers the dataset's entry under it
    # (floodlab.data.registry), and its card shows `bands`, `split_layout` and the options.
    name: str = ""
    # Modality -> band names the reader can return (e.g. {"s1": S1_BANDS, "s2": S2_BANDS}).
    bands: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Where the layout keeps its official split files, in words (for messages and the
    # store's provenance when none are found); "" when the dataset has none.
    split_layout: str = ""
    # The SAR units of the layout when they are fixed by the dataset itself (e.g. OMBRIA's
    # per-patch stretch "scaled_0_255"); None: dB, or the units declared with --units.
    sar_units: ClassVar[str | None] = None

    def __init__(self, root: str | Path, **options: Any):
        self.root = Path(root)
        self.options = options
        # The split files (or split folders) `list_chips` read the official splits from;
        # () when the source has none. Set by `list_chips`.
        self.split_files: tuple[str, ...] = ()

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """Cheaply tell whether `root` holds this layout (a few stat calls, no listing)."""
        return False

    @abc.abstractmethod
    def list_chips(self) -> list[ChipRef]:
        """All chips of the layout, sorted by id; DatasetNotFoundError if the layout is absent.

        Split files that are given or expected but missing, empty, or that match none of
        the chips raise DataError: splits are never silently invented. `split_files`
        names the files read.
        """

    @abc.abstractmethod
    def read(self, ref: ChipRef) -> Chip:
        """Read one chip; DataError naming the file if it is unreadable or inconsistent."""
