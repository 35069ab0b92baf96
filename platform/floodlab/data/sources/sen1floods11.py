"""Reader of the Sen1Floods11 v1.1 GeoTIFF tree (hand-labelled and weakly labelled chips)."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from floodlab.bands import S1_BANDS, S2_BANDS
from floodlab.data.cards import TOA_REFLECTANCE, DatasetCard, LabelCoding, Modality, Splits
from floodlab.data.registry import DatasetEntry, register_dataset
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.sources.common import ChipLayers, read_label, read_reflectance, read_sar
from floodlab.data.sources.splitfiles import (
    check_splits_match,
    find_split_files,
    require_listed,
)
from floodlab.data.synth import sen1floods11 as synth
from floodlab.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

EVENTS = "data/flood_events"
SPLITS = "splits/flood_handlabeled"
# The release calls the weak folder "WeaklyLabeled"; some mirrors and papers write
# "WeakLabeled". Both are accepted, the first that exists wins.
WEAK_DIRS = ("WeaklyLabeled", "WeakLabeled")
# Official split file stem -> floodlab split name.
SPLIT_NAMES: dict[str, str] = {
    "train": "train",
    "valid": "val",
    "test": "test",
    "bolivia": "bolivia",
}
# Every release has these; flood_bolivia_data is optional (some mirrors leave it out).
REQUIRED_SPLIT_STEMS = ("train", "valid", "test")
SPLIT_FILES_EXPECTED = (
    "flood_{train,valid,test}_data.csv (two columns <chip>_S1Hand.tif,<chip>_LabelHand.tif) "
    "or .txt (one chip id per line), flood_bolivia_data optional"
)
HOLDOUT_EVENT = "Bolivia"
SYNTH_HINT = "`floodlab synth sen1floods11 --out DIR` writes a synthetic tree in this layout"


def chip_id_of(path: str | Path) -> str:
    """`Spain_7370579` from `.../Spain_7370579_S1Hand.tif` (the last `_Layer` is dropped)."""
    return Path(path).stem.rsplit("_", 1)[0]


def event_of(chip_id: str) -> str:
    """The flood event (country, e.g. `Sri-Lanka`) of a chip id."""
    return chip_id.rsplit("_", 1)[0]


def read_split_file(path: str | Path) -> list[str]:
    """Chip ids listed by an official split file, in file order.

    Two formats exist: the official CSV with two columns and no header
    (`Ghana_53713_S1Hand.tif,Ghana_53713_LabelHand.tif`) and id-per-line text files
    (`Ghana_313799`). Blank lines and a header row naming no .tif are skipped.

    Raises:
        DataError: naming the file when it does not exist or lists no chip.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: split file does not exist; expected {SPLIT_FILES_EXPECTED}.")
    ids: list[str] = []
    with path.open(newline="") as f:
        for row in csv.reader(f):
            cell = row[0].strip() if row else ""
            if not cell:
                continue
            if cell.lower().endswith((".tif", ".tiff")):
                ids.append(chip_id_of(cell))
            elif "_" in cell and cell.rsplit("_", 1)[1].isdigit():
                ids.append(cell)
    return require_listed(
        path, ids, "`Ghana_53713_S1Hand.tif,Ghana_53713_LabelHand.tif` or `Ghana_313799`"
    )


def split_files_in(folder: str | Path) -> dict[str, Path]:
    """Official split file stem -> file in `folder` (`.csv` preferred over `.txt`).

    Raises:
        DataError: the folder does not exist, holds no split file, or lacks one of
            train, valid, test.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"{folder}: Sen1Floods11 split folder does not exist; it should hold the "
            f"official split lists {SPLIT_FILES_EXPECTED}, as `{SPLITS}` of the release "
            f"(gs://sen1floods11/v1.1/{SPLITS}) does. Fix the path (--option splits_dir), "
            "or restore the folder."
        )
    candidates = {
        stem: (f"flood_{stem}_data.csv", f"flood_{stem}_data.txt") for stem in SPLIT_NAMES
    }
    found = find_split_files(folder, candidates, REQUIRED_SPLIT_STEMS, "Sen1Floods11")
    if not found:
        raise DataError(
            f"{folder}: holds none of the Sen1Floods11 split files ({SPLIT_FILES_EXPECTED}); "
            f"copy them there from gs://sen1floods11/v1.1/{SPLITS}, or fix the path "
            "(--option splits_dir)."
        )
    return found


def read_splits(folder: str | Path) -> dict[str, str]:
    """chip id -> floodlab split from `flood_{train,valid,test,bolivia}_data.{csv,txt}`.

    `valid` is renamed `val`; a chip listed twice keeps its first split in the order
    train, valid, test, bolivia.

    Raises:
        DataError: see `split_files_in` and `read_split_file` (missing or empty files).
    """
    out: dict[str, str] = {}
    for stem, path in split_files_in(folder).items():
        for chip in read_split_file(path):
            out.setdefault(chip, SPLIT_NAMES[stem])
    return out


class Sen1Floods11Reader(SourceReader):
    """Sen1Floods11 v1.1 (Bonafilia et al., CVPRW 2020), Cloud to Street, CC-BY-4.0.

    Layout (root = the `v1.1` folder or its parent)::

        data/flood_events/HandLabeled/{S1Hand,S2Hand,LabelHand}/<Country>_<id>_<Layer>.tif
        data/flood_events/WeaklyLabeled/{S1Weak,S1OtsuLabelWeak,S2IndexLabelWeak}/...
        splits/flood_handlabeled/flood_{train,valid,test,bolivia}_data.csv

    Chip arrays: "s1" (2, H, W) float32 dB (VV, VH), NaN at nodata; "s2" (13, H, W)
    float32 TOA reflectance x10000, 0 (nodata, stored int16 or uint16) -> NaN; "label"
    int8 hand label (-1 invalid, 0 dry, 1 water) for hand chips; "label_weak" int8 from
    S1OtsuLabelWeak (0/1, anything else -1) for weak chips, which have no S2 and no
    official split. S2IndexLabelWeak is not read. Splits come from the official files
    (`valid` -> "val"); Bolivia chips not listed elsewhere are the "bolivia" hold-out.
    The split files must be complete (train, valid and test), non-empty and list at
    least one of the hand chips, else DataError; only a tree without any `splits/`
    folder (and no `splits_dir`) has no official splits. The group of a chip is its
    flood event (country).

    Options:
        labels: ("hand",), ("weak",) or ("hand", "weak").
        splits_dir: folder holding the split files, default `<v1.1>/splits/flood_handlabeled`.
        require, units: see `SourceReader` (`units` of the S1 files).
    """

    name = "sen1floods11"
    bands: ClassVar[dict[str, tuple[str, ...]]] = {"s1": S1_BANDS, "s2": S2_BANDS}
    split_layout = f"<v1.1>/{SPLITS}/{SPLIT_FILES_EXPECTED}"

    def __init__(
        self,
        root: str | Path,
        *,
        labels: Sequence[str] = ("hand",),
        splits_dir: str | Path | None = None,
        require: Sequence[str] = (),
        units: str | None = None,
    ):
        super().__init__(root, labels=labels, splits_dir=splits_dir, require=require, units=units)
        self.labels: tuple[str, ...] = (labels,) if isinstance(labels, str) else tuple(labels)
        bad = [x for x in self.labels if x not in ("hand", "weak")]
        if bad or not self.labels:
            raise ValueError(f"labels must be a subset of ('hand', 'weak'), got {self.labels}")
        self.splits_dir = splits_dir

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """`data/flood_events/` in `root` or in `root/v1.1`."""
        return any((cand / EVENTS).is_dir() for cand in (root, root / "v1.1"))

    @property
    def base(self) -> Path:
        """The `v1.1` folder: `root` itself or `root/v1.1`."""
        for cand in (self.root, self.root / "v1.1"):
            if (cand / EVENTS).is_dir():
                return cand
        raise DatasetNotFoundError(
            f"Sen1Floods11 not found: neither {self.root / EVENTS} nor "
            f"{self.root / 'v1.1' / EVENTS} exists. Point the source at the `v1.1` folder of "
            f"the download (gs://sen1floods11/v1.1), or {SYNTH_HINT}."
        )

    def _folder(self, *parts: str) -> Path:
        path = self.base.joinpath(EVENTS, *parts)
        if not path.is_dir():
            raise DatasetNotFoundError(
                f"Sen1Floods11 folder {path} is missing. Download it from "
                f"gs://sen1floods11/v1.1/{EVENTS}/{'/'.join(parts)}, or {SYNTH_HINT}."
            )
        return path

    def _labelled(
        self, source: str, s1_layer: str, label_layer: str, fix: str
    ) -> Iterator[tuple[str, Path, Path]]:
        """(chip id, S1 file, label file) of each chip in one label source's folders.

        Raises:
            DataError: an S1 chip without its label file, saying how to `fix` it.
        """
        s1_dir = self._folder(source, s1_layer)
        label_dir = self._folder(source, label_layer)
        for s1 in sorted(s1_dir.glob(f"*_{s1_layer}.tif")):
            chip = chip_id_of(s1)
            label = label_dir / f"{chip}_{label_layer}.tif"
            if not label.is_file():
                raise DataError(f"{label} is missing for {s1}; {fix}")
            yield chip, s1, label

    def _weak_root(self) -> str:
        for name in WEAK_DIRS:
            if (self.base / EVENTS / name).is_dir():
                return name
        return WEAK_DIRS[0]

    def _official_splits(self, base: Path) -> dict[str, str]:
        """chip id -> split from the split files given or expected; {} if the tree has none.

        Split files are expected when `splits_dir` is given or the tree has a `splits/`
        folder; they are not read for weak chips alone (which have no official split).
        """
        given = self.splits_dir is not None
        if not given and ("hand" not in self.labels or not (base / "splits").exists()):
            log.warning("no split files in %s (expected %s)", base, self.split_layout)
            return {}
        folder = Path(self.splits_dir) if self.splits_dir is not None else base / SPLITS
        splits = read_splits(folder)
        self.split_files = tuple(str(p) for p in split_files_in(folder).values())
        return splits

    def list_chips(self) -> list[ChipRef]:
        """All chips of the requested label sources, sorted by id."""
        base = self.base
        splits = self._official_splits(base)
        refs: list[ChipRef] = []
        hand_ids: set[str] = set()
        if "hand" in self.labels:
            s2_dir = base / EVENTS / "HandLabeled" / "S2Hand"
            fix = (
                "every hand-labelled chip needs its LabelHand file — complete the download or "
                "delete the S1 chip."
            )
            for chip, s1, label in self._labelled("HandLabeled", "S1Hand", "LabelHand", fix):
                files: dict[str, tuple[str, ...]] = {"s1": (str(s1),), "label": (str(label),)}
                s2 = s2_dir / f"{chip}_S2Hand.tif"
                if s2.is_file():
                    files["s2"] = (str(s2),)
                split = splits.get(chip)
                if split is None and event_of(chip) == HOLDOUT_EVENT:
                    split = "bolivia"
                refs.append(ChipRef(chip, event_of(chip), split, files))
                hand_ids.add(chip)
        if "weak" in self.labels:
            weak = self._weak_root()
            fix = "complete the WeaklyLabeled download or delete the S1Weak chip."
            for chip, s1, label in self._labelled(weak, "S1Weak", "S1OtsuLabelWeak", fix):
                # Ids stay unique when a chip exists in both label sources.
                cid = f"{chip}_weak" if chip in hand_ids else chip
                weak_files: dict[str, tuple[str, ...]] = {
                    "s1": (str(s1),),
                    "label_weak": (str(label),),
                }
                refs.append(ChipRef(cid, event_of(chip), None, weak_files))
        check_splits_match(
            splits,
            sorted(hand_ids),
            self.split_files,
            "Sen1Floods11",
            "point --option splits_dir at the split files of this copy",
        )
        return self.checked_listing(refs)

    def read(self, ref: ChipRef) -> Chip:
        """Read one chip; DataError naming the file(s) if unreadable or not co-registered."""
        layers = ChipLayers()
        layers.add("s1", read_sar(ref.files["s1"][0], S1_BANDS, self.units), S1_BANDS)
        if "s2" in ref.files:
            layers.add("s2", read_reflectance(ref.files["s2"][0]), S2_BANDS)
        for key in ("label", "label_weak"):
            if key in ref.files:
                layers.add(key, read_label(ref.files[key][0]))
        source = "weak" if "label_weak" in ref.files else "hand"
        return layers.chip(ref, label_source=source, event=ref.group)


_HAND, _WEAK = f"{EVENTS}/HandLabeled", f"{EVENTS}/{WEAK_DIRS[0]}"
CARD = DatasetCard(
    title="Sen1Floods11 v1.1",
    source="https://github.com/cloudtostreet/Sen1Floods11",
    licence="CC-BY-4.0",
    citation=(
        "Bonafilia, D., Tellman, B., Anderson, T., Issenberg, E. (2020). Sen1Floods11: "
        "a georeferenced dataset to train and test deep learning flood algorithms for "
        "Sentinel-1. Proceedings of the IEEE/CVF Conference on Computer Vision and "
        "Pattern Recognition Workshops (CVPRW), 210-211."
    ),
    facts={
        "download": "gs://sen1floods11/v1.1",
        "chips": {
            "hand_labeled": 446,
            "weak_labeled": 4385,
            "size_px": 512,
            "pixel_m": 10,
            "crs": "EPSG:4326",
        },
    },
    modalities={
        "s1": Modality.sar_db(
            [f"{_HAND}/S1Hand/<chip>_S1Hand.tif", f"{_WEAK}/S1Weak/<chip>_S1Weak.tif"],
            nodata="NaN",
            note="sigma0 backscatter; band descriptions VV, VH",
        ),
        "s2": Modality.reflectance(
            [f"{_HAND}/S2Hand/<chip>_S2Hand.tif"],
            dtype="int16 on disk (documented uint16; both accepted)",
            units=TOA_REFLECTANCE,
            note="hand chips only; a chip without it has no s2",
        ),
        "label": Modality(
            files=(f"{_HAND}/LabelHand/<chip>_LabelHand.tif",),
            dtype="int16",
            coding={-1: "invalid (no nodata tag)", 0: "dry", 1: "water"},
        ),
        "label_weak": Modality(
            files=(f"{_WEAK}/S1OtsuLabelWeak/<chip>_S1OtsuLabelWeak.tif",),
            coding={0: "dry", 1: "water", "other": "invalid (-1)"},
            note="Otsu threshold of S1 VV; S2IndexLabelWeak is not read",
        ),
    },
    label=LabelCoding(
        source="LabelHand for hand chips; weak chips have label_weak instead",
        classes={-1: "invalid", 0: "dry", 1: "water"},
        note="reader option labels: (hand,) (default), (weak,) or (hand, weak)",
    ),
    splits=Splits(
        group="flood event (the country prefix of the chip id)",
        names={"train": "train", "valid": "val", "test": "test", "bolivia": "bolivia"},
        note=(
            "official 2-column CSVs without header or id-per-line .txt lists; "
            "splits_dir= reads them from elsewhere; Bolivia chips are the hold-out; "
            "weak chips have no official split"
        ),
    ),
)
# Both label sources, so hand-only and mixed hand+weak specs share one store.
DATASET = register_dataset(
    DatasetEntry(Sen1Floods11Reader, synth.write, synth.count, CARD, {"labels": ("hand", "weak")})
)
