"""The contract every raw-layout reader fulfils: list chip references cheaply, read one chip.

Listing is cheap and happens on the driver; reading is per chip so a Dask graph can read
chips in parallel. Readers never normalise values: they return physical units with
nodata mapped to NaN (floats) or to the `valid` semantics of labels (-1 = invalid).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from floodlab.data.units import sar_units
from floodlab.errors import DataError

log = logging.getLogger(__name__)


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

    Options most readers take (kept here as `require` and `units`):
        require: modalities every chip must have, e.g. ("s2",); DataError otherwise.
        units: units of the SAR files if not dB ("linear", "amplitude"; see
            `floodlab.data.units`); None expects dB and refuses values that are not.
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
        # The options most readers share: the modalities every chip must have, and the
        # declared units of the SAR files (canonical name; None: dB expected and checked).
        self.require: tuple[str, ...] = tuple(options.get("require", ()))
        units = options.get("units")
        self.units: str | None = sar_units(units).name if units is not None else None
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

    # -- helpers for list_chips -----------------------------------------------------------
    def checked_listing(self, refs: list[ChipRef]) -> list[ChipRef]:
        """`refs` as `list_chips` returns them: sorted by id, each chip holding the
        modalities of the `require` option (DataError naming the first that lacks one)."""
        refs = sorted(refs, key=lambda r: r.id)
        require_modalities(refs, self.require, self.name)
        return refs

    def note_split_files(self, files: Iterable[Path], where: Path) -> None:
        """Keep the split files read as `split_files`; warn when `where` has none."""
        self.split_files = tuple(str(p) for p in files)
        if not self.split_files:
            log.warning("no split files in %s (expected %s)", where, self.split_layout)


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
