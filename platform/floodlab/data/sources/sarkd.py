"""Reader of the SAR-KD numpy folders: one .npy per band and patch, one per label."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from floodlab.bands import S1_BANDS, SARKD_BANDS
from floodlab.data.cards import INDEX, DatasetCard, LabelCoding, Modality, Splits
from floodlab.data.geotiff import IDENTITY
from floodlab.data.registry import DatasetEntry, register_dataset
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.sources.common import repeated_ids
from floodlab.data.synth import sarkd as synth
from floodlab.data.units import sar_to_db
from floodlab.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

SPLIT_DIRS = {"train": "train", "val": "val"}
OPTICAL = ("B2", "B3", "B4")
INDICES = ("NDVI", "NDWI")
SYNTH_HINT = "`floodlab synth sarkd --out DIR` writes a synthetic folder in this layout"


class SarKDReader(SourceReader):
    """SAR-KD flood patches stored as numpy arrays (SYSTEMS.md §3).

    Layout read::

        {train,val}/img/<patch_id>_<band>.npy   (H, W) float, band in VV VH B2 B3 B4 NDVI NDWI
        {train,val}/lab/<patch_id>.npy          (H, W) 1 water, 0 dry, anything else invalid

    The split is the folder (train -> "train", val -> "val"; there is no test folder).
    Chip arrays: "s1" (2, H, W) float32 VV, VH in dB; "s2" (3, H, W) float32 B2, B3, B4 as
    stored (bands["s2"] names the subset); "aux" (2, H, W) float32 NDVI, NDWI; "label"
    int8. Optical bands absent from a patch are omitted; VV and VH are required. NaN and
    the optional `nodata` value become NaN. The files carry no georeferencing: crs is ""
    and the transform the identity (pixel coordinates). Group: the patch id up to its
    last "_" when that leaves a prefix (tiles of one scene), else the patch id.

    Options:
        nodata: a numeric nodata value of the band files (default: only NaN).
        require, units: see `SourceReader` (`units` of the VV/VH files).
    """

    name = "sarkd"
    bands: ClassVar[dict[str, tuple[str, ...]]] = {"s1": S1_BANDS, "s2": OPTICAL, "aux": INDICES}
    split_layout = "the train/ and val/ folders"

    def __init__(
        self,
        root: str | Path,
        *,
        nodata: float | None = None,
        require: Sequence[str] = (),
        units: str | None = None,
    ):
        super().__init__(root, nodata=nodata, require=require, units=units)
        self.nodata: float | None = None if nodata is None else float(nodata)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A `train/img/` or `val/img/` folder."""
        return any((root / d / "img").is_dir() for d in SPLIT_DIRS)

    def list_chips(self) -> list[ChipRef]:
        """Every patch with a label and VV, VH bands, sorted by id."""
        dirs = [d for d in SPLIT_DIRS if (self.root / d / "img").is_dir()]
        if not dirs:
            raise DatasetNotFoundError(
                f"SAR-KD folders {self.root / 'train' / 'img'} and {self.root / 'val' / 'img'} "
                f"are both missing; point the source at the folder holding train/ and val/, "
                f"or {SYNTH_HINT}."
            )
        self.split_files = tuple(str(self.root / d) for d in dirs)  # the split is the folder
        refs: list[ChipRef] = []
        for d in dirs:
            img, lab = self.root / d / "img", self.root / d / "lab"
            by_patch: dict[str, dict[str, Path]] = {}
            for f in sorted(img.glob("*.npy")):
                pid, _, band = f.stem.rpartition("_")
                if band in SARKD_BANDS and pid:
                    by_patch.setdefault(pid, {})[band] = f
            for pid, files in sorted(by_patch.items()):
                label = lab / f"{pid}.npy"
                missing = [b for b in S1_BANDS if b not in files]
                if missing or not label.is_file():
                    what = [f"{pid}_{b}.npy" for b in missing] + (
                        [] if label.is_file() else [str(label)]
                    )
                    raise DataError(
                        f"SAR-KD patch {pid} in {img} lacks {', '.join(what)}; every patch needs "
                        "its VV and VH bands and a label — complete or remove the patch."
                    )
                out: dict[str, tuple[str, ...]] = {
                    "s1": tuple(str(files[b]) for b in S1_BANDS),
                    "label": (str(label),),
                }
                for key, names in (("s2", OPTICAL), ("aux", INDICES)):
                    if all(b in files for b in names):
                        out[key] = tuple(str(files[b]) for b in names)
                group = pid.rsplit("_", 1)[0] if "_" in pid else pid
                refs.append(ChipRef(pid, group, SPLIT_DIRS[d], out))
        if not refs:
            raise DatasetNotFoundError(
                f"no SAR-KD patches (<id>_VV.npy) under {self.root}; {SYNTH_HINT}."
            )
        dup = repeated_ids(refs)
        if dup:
            raise DataError(
                f"SAR-KD patch id(s) {dup} appear in both train/ and val/ under {self.root}; "
                "a patch must belong to one split — remove the duplicates."
            )
        return self.checked_listing(refs)

    def _load(self, path: str) -> np.ndarray:
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a readable .npy array ({e}); regenerate the file.") from e
        arr = np.squeeze(arr)
        if arr.ndim != 2:
            raise DataError(f"{path}: expected a (H, W) array, got shape {arr.shape}.")
        return arr

    def _stack(self, paths: tuple[str, ...], sar: bool = False) -> np.ndarray:
        """(C, H, W) float32 of one file per band, NaN at nodata; SAR bands (`sar`, in
        S1_BANDS order) checked against and converted from the reader's units to dB."""
        loaded = [self._load(p) for p in paths]
        layers = [a.astype(np.float32) for a in loaded]
        shapes = {a.shape for a in layers}
        if len(shapes) > 1:
            raise DataError(
                f"{paths[0]} and {paths[1]} have different shapes ({layers[0].shape} vs "
                f"{layers[1].shape}); the bands of a patch must be co-registered."
            )
        arr = np.stack(layers)  # (C, H, W)
        if self.nodata is not None:
            arr[np.isclose(arr, self.nodata)] = np.nan
        if sar:
            for c, band in enumerate(S1_BANDS):
                dtype = str(loaded[c].dtype)
                db = sar_to_db(
                    arr[c : c + 1], (band,), dtype=dtype, units=self.units, where=paths[c]
                )
                arr[c] = db[0]
        return arr

    def read(self, ref: ChipRef) -> Chip:
        """Read one patch; DataError naming the file(s) if unreadable or of mismatched shape."""
        arrays: dict[str, np.ndarray] = {"s1": self._stack(ref.files["s1"], sar=True)}
        bands: dict[str, tuple[str, ...]] = {"s1": S1_BANDS}
        for key, names in (("s2", OPTICAL), ("aux", INDICES)):
            if key in ref.files:
                arrays[key], bands[key] = self._stack(ref.files[key]), names
        raw = self._load(ref.files["label"][0])
        if raw.shape != arrays["s1"].shape[1:]:
            raise DataError(
                f"{ref.files['label'][0]} has shape {raw.shape} but {ref.files['s1'][0]} has "
                f"{arrays['s1'].shape[1:]}; the label must cover the patch."
            )
        for key in ("s2", "aux"):
            if key in arrays and arrays[key].shape[1:] != raw.shape:
                raise DataError(
                    f"{ref.files[key][0]} has shape {arrays[key].shape[1:]} but "
                    f"{ref.files['label'][0]} has {raw.shape}; the bands must be co-registered."
                )
        label = np.full(raw.shape, -1, dtype=np.int8)
        label[raw == 0] = 0
        label[raw == 1] = 1
        arrays["label"] = label
        return Chip(ref=ref, arrays=arrays, bands=bands, crs="", transform=IDENTITY, meta={})


def _band_files(bands: tuple[str, ...]) -> tuple[str, ...]:
    """The band files of a patch, one pattern per band."""
    return tuple(f"{{train,val}}/img/<id>_{band}.npy" for band in bands)


CARD = DatasetCard(
    title="SAR-KD numpy flood patches",
    source="numpy export of Sentinel-1/-2 flood patches (SAR-KD study format)",
    licence="that of the Sentinel-1/-2 chips the patches were cut from",
    citation="cite the SAR-KD publication and the source flood dataset of your patches",
    facts={
        "georeferencing": "none (crs '', identity transform)",
        "normalisation": "clip to [-22.225, 0], scale to [0, 1] (in the dataset)",
    },
    modalities={
        "s1": Modality.sar_db(
            _band_files(S1_BANDS),
            nodata="NaN, plus the reader option `nodata` when given",
            note="required per patch",
        ),
        "s2": Modality.reflectance(
            _band_files(OPTICAL),
            dtype="float32",
            nodata="NaN",
            note="as stored (x 10000 in synthetic data); bands absent from a patch are omitted",
        ),
        "aux": Modality(files=_band_files(INDICES), dtype="float32", units=INDEX, nodata="NaN"),
        "label": Modality(
            files=("{train,val}/lab/<id>.npy",),
            coding={1: "water", 0: "dry", "other": "invalid (-1)"},
        ),
    },
    label=LabelCoding(source="lab/<id>.npy", classes={-1: "invalid", 0: "dry", 1: "water"}),
    splits=Splits(
        group="the patch id up to its last `_`",
        names={"train": "train", "val": "val"},
        note="the folder is the split; there is no test folder",
    ),
)
DATASET = register_dataset(DatasetEntry(SarKDReader, synth.write, synth.count, CARD))
