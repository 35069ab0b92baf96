"""Reader of the SEN12MS GeoTIFF tree (paired S1, S2 and MODIS land-cover patches)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from floodlab.bands import S1_BANDS, S2_BANDS
from floodlab.data.cards import CLASS_CODES, DatasetCard, LabelCoding, Modality, Splits
from floodlab.data.geotiff import read_raster
from floodlab.data.registry import DatasetEntry, register_dataset
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.sources.common import ChipLayers, read_reflectance, read_sar
from floodlab.data.sources.splitfiles import (
    check_splits_match,
    find_split_files,
    require_listed,
)
from floodlab.data.synth import sen12ms as synth
from floodlab.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

# ROIs1158_spring_s1_1_p30.tif -> collection ROIs1158, season spring, s1, scene 1, patch 30.
PATCH_RE = re.compile(
    r"^(?P<roi>ROIs\d+)_(?P<season>[a-z]+)_(?P<mod>s1|s2|lc)_(?P<scene>\d+)_p(?P<patch>\d+)\.tiff?$"
)
SEASONS = ("spring", "summer", "fall", "winter")
# Top folders of either convention: ROIs1158_spring or ROIs1158_spring_s1.
ROI_DIR_RE = re.compile(rf"^ROIs\d+_({'|'.join(SEASONS)})(_(s1|s2|lc))?$")
LC_BANDS: tuple[str, ...] = ("IGBP", "LCCS_LC", "LCCS_LU", "LCCS_SH")
# IGBP class 17 ("water bodies") in land-cover band 1 is the water label.
IGBP_WATER = 17
IGBP_CLASSES = range(1, 18)
# Optional split lists (torchgeo convention): file names of s2 patches, one per line.
SPLIT_LISTS = {"train_list.txt": "train", "val_list.txt": "val", "test_list.txt": "test"}
# torchgeo ships train and test lists only: a val list is optional.
REQUIRED_LISTS = ("train", "test")
SYNTH_HINT = "`floodlab synth sen12ms --out DIR` writes a synthetic tree in this layout"


class Sen12MSReader(SourceReader):
    """SEN12MS (Schmitt et al., ISPRS Annals 2019), TUM, CC-BY-4.0.

    Layout (either convention, as extracted from the release archives)::

        ROIs<year>_<season>/{s1,s2,lc}_<scene>/ROIs<year>_<season>_{s1,s2,lc}_<scene>_p<n>.tif
        ROIs<year>_<season>_{s1,s2,lc}/{s1,s2,lc}_<scene>/...same file names...

    Files are pixel-interleaved 256x256 patches in UTM: s1 2 bands float32 dB (VV, VH),
    s2 13 bands uint16 reflectance x10000, lc 4 bands (IGBP, LCCS LC/LU/SH) uint8 or
    uint16. Chip arrays: "s1", "s2" (NaN where 0), "lc" as stored, and "label" int8 =
    water where IGBP (lc band 1) is class 17, 0 for other IGBP classes 1..16, -1 for
    codes outside 1..17. A patch may lack s2 or lc; `require=("s2",)` makes that an error.
    Splits come from `train_list.txt`/`val_list.txt`/`test_list.txt` at the root when
    present (torchgeo convention; the val list is optional), None otherwise. Lists that
    are incomplete (train or test missing), empty, or that name none of the patches are
    a DataError. Group: `<season>_<scene>`.

    Options:
        seasons: keep only these seasons, e.g. ("winter",); None keeps all.
        season: the same as `seasons`.
        require, units: see `SourceReader` (`units` of the s1 files).
    """

    name = "sen12ms"
    bands: ClassVar[dict[str, tuple[str, ...]]] = {"s1": S1_BANDS, "s2": S2_BANDS, "lc": LC_BANDS}
    split_layout = "<root>/{train,val,test}_list.txt (one patch file name per line)"

    def __init__(
        self,
        root: str | Path,
        *,
        seasons: str | Sequence[str] | None = None,
        season: str | Sequence[str] | None = None,
        require: Sequence[str] = (),
        units: str | None = None,
    ):
        super().__init__(root, seasons=seasons, season=season, require=require, units=units)
        seasons = seasons or season
        if isinstance(seasons, str):
            seasons = (seasons,)
        self.seasons: tuple[str, ...] | None = tuple(seasons) if seasons else None
        if self.seasons and not set(self.seasons) <= set(SEASONS):
            raise ValueError(f"seasons must be among {SEASONS}, got {self.seasons}")

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A `ROIs<year>_<season>` (or `ROIs<year>_<season>_<s1|s2|lc>`) folder."""
        return any(ROI_DIR_RE.match(p.name) and p.is_dir() for p in root.glob("ROIs*_*"))

    def _index(self) -> dict[tuple[str, str, str, str], dict[str, Path]]:
        """(roi, season, scene, patch) -> {modality: path} over the whole tree."""
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"SEN12MS folder {self.root} does not exist. Extract the ROIs*_<season>_*.tar.gz "
                f"archives (https://mediatum.ub.tum.de/1474000) into it, or {SYNTH_HINT}."
            )
        index: dict[tuple[str, str, str, str], dict[str, Path]] = {}
        # Patches sit exactly two folders below the root in both conventions.
        for path in sorted(self.root.glob("*/*/*.tif")):
            m = PATCH_RE.match(path.name)
            if not m:
                continue
            key = (m["roi"], m["season"], m["scene"], m["patch"])
            index.setdefault(key, {})[m["mod"]] = path
        if not index:
            raise DatasetNotFoundError(
                f"no SEN12MS patches found under {self.root}: expected files like "
                f"{self.root}/ROIs1158_spring/s1_1/ROIs1158_spring_s1_1_p30.tif. "
                f"Point the source at the folder holding ROIs*_<season>, or {SYNTH_HINT}."
            )
        return index

    def _splits(self) -> dict[str, str]:
        """chip id -> split from the root's split lists ({} without lists)."""
        candidates = {split: (name,) for name, split in SPLIT_LISTS.items()}
        found = find_split_files(self.root, candidates, REQUIRED_LISTS, "SEN12MS")
        out: dict[str, str] = {}
        for split, path in found.items():
            ids = []
            for line in path.read_text().splitlines():
                m = PATCH_RE.match(line.strip())
                if m:
                    ids.append(_chip_id(m["roi"], m["season"], m["scene"], m["patch"]))
            for cid in require_listed(path, ids, "`ROIs1158_spring_s2_1_p30.tif`"):
                out.setdefault(cid, split)
        self.note_split_files(found.values(), self.root)
        return out

    def list_chips(self) -> list[ChipRef]:
        """All patches with S1 or S2 (optionally of some seasons), sorted by id."""
        splits = self._splits()
        refs: list[ChipRef] = []
        for (roi, season, scene, patch), files in self._index().items():
            if self.seasons and season not in self.seasons:
                continue
            if "s1" not in files and "s2" not in files:
                log.warning(
                    "SEN12MS patch %s_%s_%s_p%s has only lc; skipped", roi, season, scene, patch
                )
                continue
            cid = _chip_id(roi, season, scene, patch)
            refs.append(
                ChipRef(
                    id=cid,
                    group=f"{season}_{scene}",
                    split=splits.get(cid),
                    files={m: (str(p),) for m, p in sorted(files.items())},
                )
            )
        if not refs:
            raise DatasetNotFoundError(
                f"no SEN12MS patches of season(s) {self.seasons} under {self.root}; "
                f"available seasons: {sorted({k[1] for k in self._index()})}."
            )
        check_splits_match(
            splits,
            [r.id for r in refs],
            self.split_files,
            "SEN12MS",
            "replace them with the lists of this copy, or remove them all to get an "
            "announced random grouped split",
        )
        return self.checked_listing(refs)

    def read(self, ref: ChipRef) -> Chip:
        """Read one patch; DataError naming the file(s) if unreadable or not co-registered."""
        layers = ChipLayers()
        if "s1" in ref.files:
            layers.add("s1", read_sar(ref.files["s1"][0], S1_BANDS, self.units), S1_BANDS)
        if "s2" in ref.files:
            layers.add("s2", read_reflectance(ref.files["s2"][0]), S2_BANDS)
        if "lc" in ref.files:
            lc, info = read_raster(ref.files["lc"][0])
            if lc.shape[0] != len(LC_BANDS) or lc.dtype.kind not in "ui":
                raise DataError(
                    f"{info.path}: land cover must be {len(LC_BANDS)} integer bands "
                    f"({', '.join(LC_BANDS)}), got {lc.shape[0]} band(s) of {lc.dtype}."
                )
            layers.add("lc", (lc, info), LC_BANDS)
            layers.arrays["label"] = igbp_water_label(lc[0])
        return layers.chip(ref, season=ref.group.split("_")[0])


def igbp_water_label(igbp: np.ndarray) -> np.ndarray:
    """int8 (H, W) water label from IGBP codes: 17 -> 1, 1..16 -> 0, anything else -> -1."""
    out = np.full(igbp.shape, -1, dtype=np.int8)
    valid = (igbp >= IGBP_CLASSES.start) & (igbp < IGBP_CLASSES.stop)
    out[valid] = (igbp[valid] == IGBP_WATER).astype(np.int8)
    return out


def _chip_id(roi: str, season: str, scene: str, patch: str) -> str:
    return f"{roi}_{season}_{scene}_p{patch}"


# Patch files in either convention: ROIs<year>_<season>/<layer>_<scene>/... or
# ROIs<year>_<season>_<layer>/<layer>_<scene>/...
_PATCH = "ROIs<year>_<season>[_{0}]/{0}_<scene>/ROIs<year>_<season>_{0}_<scene>_p<n>.tif"
CARD = DatasetCard(
    title="SEN12MS",
    source="https://mediatum.ub.tum.de/1474000",
    licence="CC-BY-4.0",
    citation=(
        "Schmitt, M., Hughes, L. H., Qiu, C., Zhu, X. X. (2019). SEN12MS - a curated "
        "dataset of georeferenced multi-spectral Sentinel-1/2 imagery for deep learning "
        "and data fusion. ISPRS Annals of the Photogrammetry, Remote Sensing and Spatial "
        "Information Sciences, IV-2/W7, 153-160."
    ),
    facts={
        "chips": {
            "patches": 180662,
            "size_px": 256,
            "pixel_m": 10,
            "crs": "UTM (EPSG:326xx/327xx)",
        },
        "seasons": {
            "ROIs1158": "spring",
            "ROIs1868": "summer",
            "ROIs1970": "fall",
            "ROIs2017": "winter",
        },
    },
    modalities={
        "s1": Modality.sar_db(
            [_PATCH.format("s1")], nodata="none", note="pixel-interleaved, no band descriptions"
        ),
        "s2": Modality.reflectance(
            [_PATCH.format("s2")],
            dtype="uint16",
            note="a separate download: a patch may lack it (require=('s2',) refuses that)",
        ),
        "lc": Modality(
            files=(_PATCH.format("lc"),),
            dtype="uint8 or uint16",
            units=f"MODIS MCD12Q1 {CLASS_CODES}",
            note="a separate download: a patch may lack it",
        ),
    },
    label=LabelCoding(
        source="lc band 1 (IGBP)",
        classes={-1: "IGBP code outside 1..17", 0: "IGBP 1..16", 1: "IGBP 17 water bodies"},
    ),
    splits=Splits(
        group="<season>_<scene>",
        note=(
            "the release has no split lists; lists that are present (torchgeo "
            "convention) must include train and test (val is optional); reader option "
            "seasons=('winter',) keeps some seasons"
        ),
    ),
)
DATASET = register_dataset(DatasetEntry(Sen12MSReader, synth.write, synth.count, CARD))
