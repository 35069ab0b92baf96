"""Reader of CloudSEN12 patches in the flat `s2_toa/` + `cloud/` layout with split CSVs."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from floodlab.bands import S2_BANDS
from floodlab.data.cards import TOA_REFLECTANCE, DatasetCard, LabelCoding, Modality, Splits
from floodlab.data.geotiff import nodata_mask, read_raster
from floodlab.data.registry import DatasetEntry, register_dataset
from floodlab.data.sources.base import Chip, ChipRef, SourceReader, require_modalities
from floodlab.data.sources.common import check_all_aligned, read_reflectance
from floodlab.data.sources.splitfiles import (
    check_splits_match,
    find_split_files,
    require_listed,
)
from floodlab.data.synth import cloudsen12 as synth
from floodlab.errors import DatasetNotFoundError

log = logging.getLogger(__name__)

S2_DIR, CLOUD_DIR = "s2_toa", "cloud"
SPLIT_FILES = {"train.csv": "train", "val.csv": "val", "test.csv": "test"}
# Header names a split CSV may start with (the header is optional).
_HEADERS = {"id", "patch", "patch_id", "name", "roi_id", "s2_id"}
# Cloud mask classes (CloudSEN12).
CLEAR, THICK, THIN, SHADOW = 0, 1, 2, 3
SYNTH_HINT = "`floodlab synth cloudsen12 --out DIR` writes a synthetic folder in this layout"


class CloudSEN12Reader(SourceReader):
    """CloudSEN12 (Aybar et al., Scientific Data 2022) in the flat layout (licence: its card).

    Layout read::

        s2_toa/<id>.tif    13 bands uint16 Sentinel-2 L1C TOA reflectance x10000, 0 nodata
        cloud/<id>.tif     1 band uint8: 0 clear, 1 thick cloud, 2 thin cloud, 3 cloud shadow
        train.csv, val.csv, test.csv   one patch id per line (first column; header optional)

    Chip arrays: "s2" (13, H, W) float32 (NaN where 0), "cloud" (H, W) uint8 raw classes
    (255 where the mask has nodata or an unknown code), and "label" int8:
    with `merge_clouds=True` (default, SYSTEMS.md §5) thin | thick -> 1, clear and shadow
    -> 0; with `merge_clouds=False` only thick cloud -> 1 (thin is 0; the raw classes stay
    in "cloud"). Unknown codes, mask nodata and pixels with no S2 data -> -1.
    A patch id listed in several split files keeps the first of train, val, test.
    Group: the ROI (`ROI_00002` from `ROI_00002__<date>_<tile>`), so one place never
    spans two splits when a converter splits by group.

    Options:
        merge_clouds: see above.
        require: see `SourceReader`.
    """

    name = "cloudsen12"
    bands: ClassVar[dict[str, tuple[str, ...]]] = {"s2": S2_BANDS}
    split_layout = "<root>/{train,val,test}.csv (one patch id per line)"

    def __init__(self, root: str | Path, *, merge_clouds: bool = True, require: Sequence[str] = ()):
        super().__init__(root, merge_clouds=merge_clouds, require=require)
        self.merge_clouds = bool(merge_clouds)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """`s2_toa/` and `cloud/` side by side."""
        return (root / S2_DIR).is_dir() and (root / CLOUD_DIR).is_dir()

    def _splits(self) -> dict[str, str]:
        """patch id -> split from the split CSVs: all three or none, none of them empty."""
        candidates = {split: (name,) for name, split in SPLIT_FILES.items()}
        found = find_split_files(self.root, candidates, list(candidates), "CloudSEN12")
        out: dict[str, str] = {}
        for split, path in found.items():
            with path.open(newline="") as f:
                cells = [row[0].strip() for row in csv.reader(f) if row and row[0].strip()]
            if cells and cells[0].lower() in _HEADERS:
                cells = cells[1:]
            ids = require_listed(path, [Path(c).stem for c in cells], "`ROI_00002__<date>_<tile>`")
            for pid in ids:
                if pid in out and out[pid] != split:
                    log.warning(
                        "%s is listed in %s and %s; kept %s", pid, out[pid], split, out[pid]
                    )
                out.setdefault(pid, split)
        self.note_split_files(found.values(), self.root)
        return out

    def list_chips(self) -> list[ChipRef]:
        """Every patch with both an S2 file and a cloud mask, sorted by id."""
        s2_dir, cloud_dir = self.root / S2_DIR, self.root / CLOUD_DIR
        for folder in (s2_dir, cloud_dir):
            if not folder.is_dir():
                raise DatasetNotFoundError(
                    f"CloudSEN12 folder {folder} is missing; the layout needs {S2_DIR}/ and "
                    f"{CLOUD_DIR}/ side by side (datasets/cloudsen12/README.md), or {SYNTH_HINT}."
                )
        splits = self._splits()
        refs = []
        for s2 in sorted(s2_dir.glob("*.tif")):
            mask = cloud_dir / s2.name
            if not mask.is_file():
                log.warning("no cloud mask %s for %s; patch skipped", mask, s2)
                continue
            pid = s2.stem
            refs.append(
                ChipRef(
                    pid,
                    pid.split("__")[0],
                    splits.get(pid),
                    {"s2": (str(s2),), "cloud": (str(mask),)},
                )
            )
        if not refs:
            raise DatasetNotFoundError(
                f"no CloudSEN12 patches (pairs of {s2_dir}/*.tif and {cloud_dir}/*.tif); "
                f"{SYNTH_HINT}."
            )
        check_splits_match(
            splits,
            [r.id for r in refs],
            self.split_files,
            "CloudSEN12",
            "replace them with the split files of this copy, or remove all three to get an "
            "announced random grouped split",
        )
        require_modalities(refs, self.require, self.name)
        return refs

    def read(self, ref: ChipRef) -> Chip:
        """Read one patch; DataError naming the file(s) if unreadable or not co-registered."""
        s2, s2_info = read_reflectance(ref.files["s2"][0])
        raw, c_info = read_raster(ref.files["cloud"][0], bands=[1])
        raw = raw[0]  # (H, W)
        check_all_aligned([s2_info, c_info])
        bad = nodata_mask(raw, c_info.nodata) | (raw > SHADOW) | (raw < CLEAR)
        cloud = np.where(bad, 255, raw).astype(np.uint8)
        positive = (cloud == THICK) | (cloud == THIN) if self.merge_clouds else cloud == THICK
        label = positive.astype(np.int8)
        label[bad | np.isnan(s2).all(axis=0)] = -1
        return Chip(
            ref=ref,
            arrays={"s2": s2, "cloud": cloud, "label": label},
            bands={"s2": S2_BANDS},
            crs=s2_info.crs,
            transform=s2_info.transform,
            meta={"merge_clouds": self.merge_clouds},
        )


CARD = DatasetCard(
    title="CloudSEN12 (flat GeoTIFF layout)",
    source="https://cloudsen12.github.io/",
    licence="CC0-1.0 (CloudSEN12+); CC-BY-NC-4.0 on earlier HuggingFace copies - check yours",
    citation=(
        "Aybar, C., Ysuhuaylas, L., Loja, J., Gonzales, K., Herrera, F., Bautista, L., "
        "Yali, R., Flores, A., Diaz, L., Cuenca, N., Espinoza, W., Prudencio, F., "
        "Llactayo, V., Montero, D., Sudmanns, M., Tiede, D., Mateo-Garcia, G., "
        "Gomez-Chova, L. (2022). CloudSEN12, a global dataset for semantic understanding "
        "of cloud and cloud shadow in Sentinel-2. Scientific Data 9, 782."
    ),
    modalities={
        "s2": Modality.reflectance(
            [f"{S2_DIR}/<id>.tif"], dtype="uint16", units=f"L1C {TOA_REFLECTANCE}"
        ),
        "cloud": Modality(
            files=(f"{CLOUD_DIR}/<id>.tif",),
            dtype="uint8",
            coding={
                CLEAR: "clear",
                THICK: "thick cloud",
                THIN: "thin cloud",
                SHADOW: "cloud shadow",
            },
            note="kept as the `cloud` array; mask nodata and unknown codes become 255",
        ),
    },
    label=LabelCoding(
        source="cloud",
        classes={-1: "no S2 data, mask nodata or unknown code", 0: "clear", 1: "cloud"},
        note=(
            "merge_clouds=True (default): cloud = thick or thin, clear = clear or "
            "shadow; merge_clouds=False: cloud = thick only"
        ),
    ),
    splits=Splits(
        group="ROI (the id prefix before `__`)",
        note=(
            "the three CSVs come together; an optional header is ignored; an id in "
            "several files keeps the first of train, val, test"
        ),
    ),
)
DATASET = register_dataset(DatasetEntry(CloudSEN12Reader, synth.write, synth.count, CARD))
