"""Reader of the DeepFlood layout: one folder per tile, one GeoTIFF per layer and polarisation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from floodlab.bands import AUX_BANDS, S1_BANDS, S2_BANDS
from floodlab.data.cards import DEGREES, INDEX, METRES, DatasetCard, LabelCoding, Modality, Splits
from floodlab.data.registry import DatasetEntry, register_dataset
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.sources.common import (
    ChipLayers,
    read_float,
    read_label,
    read_reflectance,
    read_sar,
)
from floodlab.data.synth import deepflood as synth
from floodlab.errors import DataError, DatasetNotFoundError

# Layer file names inside a tile folder.
S1_FILES = {"VV": "S1_VV.tif", "VH": "S1_VH.tif"}
S2_FILE = "S2.tif"
NDWI_FILE = "NDWI.tif"
AUX_FILES = {"SLOPE": "SLOPE.tif", "DTM": "DTM.tif"}
FLOOD_FILE = "FLOOD.tif"
SYNTH_HINT = "`floodlab synth deepflood --out DIR` writes a synthetic tree in this layout"


class DeepFloodReader(SourceReader):
    """DeepFlood-style multi-source flood tiles (S1 VV/VH, S2, NDWI, slope, DTM, flood mask).

    Layout read (floodlab's arrangement of the DeepFlood layers; the published archives
    are re-filed into it, see datasets/deepflood/README.md)::

        <event>/<tile>/S1_VV.tif   1 band float32, dB, nodata tag (NaN or numeric)
        <event>/<tile>/S1_VH.tif   1 band float32, dB (separate file per polarisation)
        <event>/<tile>/S2.tif      13 bands (B1..B12 incl. B8A), int16/uint16 x10000, 0 nodata
        <event>/<tile>/NDWI.tif    1 band float32 (not read: NDWI is recomputed from S2)
        <event>/<tile>/SLOPE.tif   1 band float32, degrees
        <event>/<tile>/DTM.tif     1 band float32, metres above sea level
        <event>/<tile>/FLOOD.tif   1 band uint8/int16, 1 flood, 0 dry, nodata/other -> invalid

    Chip arrays: "s1" (2, H, W) float32 dB; "s2" (13, H, W) float32 (when S2.tif exists);
    "aux" (2, H, W) float32 SLOPE, DTM (when both exist), NaN at nodata; "label" int8.
    There is no official split (None): conversion assigns a seeded grouped 80/10/10
    split and announces it. The group of a tile is its event.

    Options:
        require, units: see `SourceReader` (`units` of the S1 files).
    """

    name = "deepflood"
    bands: ClassVar[dict[str, tuple[str, ...]]] = {"s1": S1_BANDS, "s2": S2_BANDS, "aux": AUX_BANDS}

    def __init__(self, root: str | Path, *, require: Sequence[str] = (), units: str | None = None):
        super().__init__(root, require=require, units=units)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """At least one `<event>/<tile>/S1_VV.tif` (stops at the first one found)."""
        return next(root.glob(f"*/*/{S1_FILES['VV']}"), None) is not None

    def list_chips(self) -> list[ChipRef]:
        """Every `<event>/<tile>` folder holding S1_VV.tif, sorted by id `<event>_<tile>`."""
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"DeepFlood folder {self.root} does not exist; arrange the data as "
                f"<event>/<tile>/S1_VV.tif ... (datasets/deepflood/README.md), or {SYNTH_HINT}."
            )
        refs: list[ChipRef] = []
        for vv in sorted(self.root.glob(f"*/*/{S1_FILES['VV']}")):
            tile = vv.parent
            event = tile.parent.name
            missing = [f for f in (S1_FILES["VH"], FLOOD_FILE) if not (tile / f).is_file()]
            if missing:
                raise DataError(
                    f"{tile} has {S1_FILES['VV']} but lacks {', '.join(missing)}; every DeepFlood "
                    "tile needs both polarisations and its flood mask — complete or remove it."
                )
            files: dict[str, tuple[str, ...]] = {
                "s1": (str(tile / S1_FILES["VV"]), str(tile / S1_FILES["VH"])),
                "label": (str(tile / FLOOD_FILE),),
            }
            if (tile / S2_FILE).is_file():
                files["s2"] = (str(tile / S2_FILE),)
            if all((tile / f).is_file() for f in AUX_FILES.values()):
                files["aux"] = tuple(str(tile / f) for f in AUX_FILES.values())
            refs.append(ChipRef(f"{event}_{tile.name}", event, None, files))
        if not refs:
            raise DatasetNotFoundError(
                f"no DeepFlood tiles under {self.root}: expected <event>/<tile>/{S1_FILES['VV']}. "
                f"Point the source at the folder holding the event folders, or {SYNTH_HINT}."
            )
        return self.checked_listing(refs)

    def read(self, ref: ChipRef) -> Chip:
        """Read one tile; DataError naming the files if unreadable or not co-registered."""
        layers = ChipLayers()
        # S1 and aux keep one band per file, stacked to (2, H, W): VV, VH and SLOPE, DTM.
        s1 = zip(ref.files["s1"], S1_BANDS, strict=True)
        layers.add_stack(
            "s1", [read_sar(p, (Path(p).stem,), self.units, (b,)) for p, b in s1], S1_BANDS
        )
        if "s2" in ref.files:
            layers.add("s2", read_reflectance(ref.files["s2"][0]), S2_BANDS)
        if "aux" in ref.files:
            aux = zip(ref.files["aux"], AUX_BANDS, strict=True)
            layers.add_stack("aux", [read_float(p, (b,)) for p, b in aux], AUX_BANDS)
        layers.add("label", read_label(ref.files["label"][0]))
        return layers.chip(ref, event=ref.group)


CARD = DatasetCard(
    title="DeepFlood multi-source flood tiles (floodlab layout)",
    source="the DeepFlood release you obtain; files re-filed into the layout of README.md",
    licence="that of the obtained release (not redistributed by floodlab)",
    citation="cite the DeepFlood publication of the release you use",
    modalities={
        "s1": Modality.sar_db(
            [f"<event>/<tile>/{f}" for f in S1_FILES.values()],
            nodata="file tag (NaN or numeric, e.g. -9999) -> NaN",
            note="one file per polarisation",
        ),
        "s2": Modality.reflectance(
            [f"<event>/<tile>/{S2_FILE}"],
            dtype="int16 or uint16",
            note="optional; bands by description when present, else in this order",
        ),
        "aux": Modality(
            files=tuple(f"<event>/<tile>/{f}" for f in AUX_FILES.values()),
            dtype="float32",
            units=f"SLOPE: {DEGREES}, DTM: {METRES} above sea level",
            nodata="file tag -> NaN",
            note="optional, both or neither",
        ),
        "ndwi": Modality(
            files=(f"<event>/<tile>/{NDWI_FILE}",),
            dtype="float32",
            units=INDEX,
            bands=("NDWI",),
            note="not read: NDWI is recomputed from S2 as (B3 - B8) / (B3 + B8)",
        ),
        "label": Modality(
            files=(f"<event>/<tile>/{FLOOD_FILE}",),
            dtype="uint8 or int16",
            coding={1: "flood", 0: "dry", "nodata or other": "invalid (-1)"},
        ),
    },
    label=LabelCoding(source=FLOOD_FILE, classes={-1: "invalid", 0: "dry", 1: "flood"}),
    splits=Splits(group="event folder"),
)
DATASET = register_dataset(DatasetEntry(DeepFloodReader, synth.write, synth.count, CARD))
