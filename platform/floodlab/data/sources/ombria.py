"""Reader of OMBRIA: bi-temporal Sentinel-1/-2 flood patches as plain PNGs (no georeferencing)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
from rasterio.errors import NotGeoreferencedWarning

from floodlab.data.cards import INDEX, REFLECTANCE, DatasetCard, LabelCoding, Modality, Splits
from floodlab.data.geotiff import IDENTITY, read_raster
from floodlab.data.registry import DatasetEntry, register_dataset
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.sources.common import repeated_ids
from floodlab.data.synth import ombria as synth
from floodlab.data.units import SCALED_0_255, check_sar
from floodlab.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)
# OMBRIA's PNGs carry no georeferencing by design; rasterio's warning about it says nothing
# to a user (process-wide, since chips are read from several threads at once).
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)

SAR = ("VV", "VV_pre")  # post-event, pre-event
OPTICAL = ("B11", "B8", "B3")  # the three channels of the S2 PNGs, in file order
SPLITS = ("train", "test")  # the official folders; "val" is carved from train
# (folder, file prefix) of each layer; files are <prefix>_<id>.png.
S1_LAYERS = {"VV": ("AFTER", "S1_after"), "VV_pre": ("BEFORE", "S1_before")}
MASK_LAYER = ("MASK", "S1_mask")
S2_LAYER = ("AFTER", "S2_after")
X255_TO_X10000 = 10000.0 / 255.0  # the S2 PNGs hold reflectance x 255
SYNTH_HINT = "`floodlab synth ombria --out DIR` writes a synthetic folder in this layout"


def _patch_id(path: Path, prefix: str) -> str:
    return path.stem[len(prefix) + 1 :]


class OmbriaReader(SourceReader):
    """OMBRIA (Drakonakis et al., IEEE JSTARS 2022): real flood patches from Copernicus EMS.

    Layout read::

        OmbriaS1/{train,test}/{AFTER,BEFORE,MASK}/S1_{after,before,mask}_<id>.png
        OmbriaS2/{train,test}/AFTER/S2_after_<id>.png      (optional)

    Chip arrays:

    - "s1" (2, H, W) float32: VV post-event and VV_pre pre-event. Each PNG was stretched
      from its own min..max to 0..255, so absolute backscatter is lost: the values are kept
      as they are and the store records the unit ``scaled_0_255`` (`floodlab.data.units`);
      normalise per patch (``data.normalize: per_patch``), never with dB ranges.
    - "s2" (3, H, W) float32: B11, B8, B3 of the post-event optical image, converted from
      reflectance x 255 to reflectance x 10000 (floodlab's unit). A pixel 0 in all three
      bands is nodata (NaN); a single 0 (very dark water in NIR/SWIR) becomes 1, so that
      it is not mistaken for the store's 0 = nodata.
    - "label" (H, W) int8: the S1 mask, 255 -> 1 flood, 0 -> 0 dry, anything else -1
      invalid. OMBRIA delineates the flood of the event: permanent water is 0.

    No file is georeferenced: crs is "" and the transform the identity (pixel units).

    Splits: the official train/ and test/ folders (test is a random patch split of the same
    events). A validation split is carved from train: `val_fraction` of the train patches,
    drawn with `val_seed` (recorded in the store's provenance). Patches are neighbours in
    the same events, so a patch split lets neighbouring context leak between splits; the
    group of a patch is the patch itself.

    Options:
        val_fraction: share of the train patches that become the val split.
        val_seed: seed of that draw.
        require: see `SourceReader`.
    """

    name = "ombria"
    bands: ClassVar[dict[str, tuple[str, ...]]] = {"s1": SAR, "s2": OPTICAL}
    split_layout = "the OmbriaS1/train and OmbriaS1/test folders (val carved from train)"
    sar_units: ClassVar[str | None] = SCALED_0_255.name

    def __init__(
        self,
        root: str | Path,
        *,
        val_fraction: float = 0.1,
        val_seed: int = 0,
        require: tuple[str, ...] | list[str] = (),
    ):
        super().__init__(root, val_fraction=val_fraction, val_seed=val_seed, require=require)
        if not 0.0 <= float(val_fraction) < 1.0:
            raise ValueError(f"`0 <= val_fraction < 1` must hold, but got {val_fraction}")
        self.val_fraction, self.val_seed = float(val_fraction), int(val_seed)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """An `OmbriaS1/` folder with a train/ or test/ split."""
        return any((root / "OmbriaS1" / split / "AFTER").is_dir() for split in SPLITS)

    def list_chips(self) -> list[ChipRef]:
        """Every patch with its post, pre and mask PNGs, sorted by id, with its split."""
        s1 = self.root / "OmbriaS1"
        present = [split for split in SPLITS if (s1 / split / "AFTER").is_dir()]
        if not present:
            raise DatasetNotFoundError(
                f"no OMBRIA folders {s1 / 'train' / 'AFTER'} or {s1 / 'test' / 'AFTER'}; point "
                f"the source at the folder holding OmbriaS1/ (and OmbriaS2/), or {SYNTH_HINT}."
            )
        if "train" not in present:
            raise DataError(
                f"{s1 / 'train'}: missing; OMBRIA's official split needs its train folder "
                "(the val split is carved from it)."
            )
        self.split_files = tuple(str(s1 / split) for split in present)
        refs: list[ChipRef] = []
        for split in present:
            refs += self._list_split(split)
        dup = repeated_ids(refs)
        if dup:
            raise DataError(
                f"OMBRIA patch id(s) {dup} are in both train/ and test/ under {s1}; a patch "
                "must belong to one split."
            )
        refs = self._carve_val(refs)
        missing_s2 = [r.id for r in refs if "s2" not in r.files]
        if "s2" in self.require and missing_s2:
            raise DataError(
                f"--option require=[s2]: {len(missing_s2)} patches have no OmbriaS2 image "
                f"(e.g. {missing_s2[:3]}); drop the requirement or complete OmbriaS2/."
            )
        return sorted(refs, key=lambda r: r.id)

    def _list_split(self, split: str) -> list[ChipRef]:
        s1 = self.root / "OmbriaS1" / split
        after_dir, after_prefix = S1_LAYERS["VV"]
        posts = sorted((s1 / after_dir).glob(f"{after_prefix}_*.png"))
        if not posts:
            raise DataError(f"{s1 / after_dir}: no {after_prefix}_<id>.png files")
        out = []
        for post in posts:
            pid = _patch_id(post, after_prefix)
            files: dict[str, tuple[str, ...]] = {}
            layers = [S1_LAYERS[b] for b in SAR]
            paths = [s1 / folder / f"{prefix}_{pid}.png" for folder, prefix in layers]
            mask = s1 / MASK_LAYER[0] / f"{MASK_LAYER[1]}_{pid}.png"
            missing = [str(p) for p in [*paths, mask] if not p.is_file()]
            if missing:
                raise DataError(
                    f"OMBRIA patch {pid} ({split}) lacks {', '.join(missing)}; every patch "
                    "needs its AFTER, BEFORE and MASK images."
                )
            files["s1"] = tuple(str(p) for p in paths)
            files["label"] = (str(mask),)
            s2 = self.root / "OmbriaS2" / split / S2_LAYER[0] / f"{S2_LAYER[1]}_{pid}.png"
            if s2.is_file():
                files["s2"] = (str(s2),)
            out.append(ChipRef(id=pid, group=pid, split=split, files=files))
        return out

    def _carve_val(self, refs: list[ChipRef]) -> list[ChipRef]:
        """Move `val_fraction` of the train patches (seeded draw) into the val split."""
        train = sorted(r.id for r in refs if r.split == "train")
        n_val = round(self.val_fraction * len(train))
        rng = np.random.default_rng(self.val_seed)
        val = {train[k] for k in rng.permutation(len(train))[:n_val]}
        return [ChipRef(r.id, r.group, "val", r.files) if r.id in val else r for r in refs]

    def _png(self, path: str, bands: int) -> np.ndarray:
        data, _ = read_raster(path)
        if data.shape[0] != bands:
            raise DataError(
                f"{path}: {data.shape[0]} band(s), expected {bands}; the file is not an OMBRIA "
                "image (S1 and masks are grey, S2 is RGB holding B11, B8, B3)."
            )
        if data.dtype != np.uint8:
            raise DataError(f"{path}: {data.dtype} pixels, expected 8-bit PNG (uint8)")
        return data

    def read(self, ref: ChipRef) -> Chip:
        """Read one patch; DataError naming the file if it is unreadable or inconsistent."""
        layers = [self._png(p, 1)[0] for p in ref.files["s1"]]
        shapes = {a.shape for a in [*layers]}
        sar = np.stack(layers).astype(np.float32)  # (2, H, W), 0..255
        for c, path in enumerate(ref.files["s1"]):
            check_sar(sar[c], dtype="uint8", units=SCALED_0_255.name, where=path)
        mask = self._png(ref.files["label"][0], 1)[0]
        shapes.add(mask.shape)
        label = np.full(mask.shape, -1, dtype=np.int8)
        label[mask == 255] = 1
        label[mask == 0] = 0
        arrays: dict[str, np.ndarray] = {"s1": sar, "label": label}
        bands: dict[str, tuple[str, ...]] = {"s1": SAR}
        if "s2" in ref.files:
            rgb = self._png(ref.files["s2"][0], 3)  # (3, H, W): B11, B8, B3 x 255
            shapes.add(rgb.shape[1:])
            refl = rgb.astype(np.float32) * np.float32(X255_TO_X10000)
            refl[refl == 0] = 1.0  # near-zero reflectance, not nodata
            refl[:, (rgb == 0).all(axis=0)] = np.nan  # black in every band: no data
            arrays["s2"], bands["s2"] = refl, OPTICAL
        if len(shapes) > 1:
            raise DataError(
                f"OMBRIA patch {ref.id}: its images have different sizes {sorted(shapes)}; "
                "the AFTER, BEFORE, MASK and S2 images of a patch must be co-registered."
            )
        return Chip(ref=ref, arrays=arrays, bands=bands, crs="", transform=IDENTITY, meta={})


CARD = DatasetCard(
    title="OMBRIA: bi-temporal Sentinel-1/-2 flood patches from Copernicus EMS",
    source="geodrak/OMBRIA (Drakonakis et al., IEEE JSTARS 2022), 694 patches of "
    "256 x 256 px from EMS rapid-mapping events 2017-2020",
    licence="none stated for the data; research use",
    citation="G. I. Drakonakis et al., 'OmbriaNet - supervised flood mapping via "
    "convolutional neural networks using multitemporal Sentinel-1 and Sentinel-2 data "
    "fusion', IEEE JSTARS 15, 2022",
    facts={
        "georeferencing": "none: plain PNG (crs '', identity transform)",
        "normalisation": "per patch (data.normalize: per_patch): every S1 image was "
        "stretched from its own min..max to 0..255",
        "published": "per-image flood IoU on the 70 test patches: Otsu on S2 MNDWI "
        "0.333, U-Net S1 0.573, U-Net S2 0.542, OmbriaNet S1 0.518, SVM S1+S2 0.625, "
        "OmbriaNet S1+S2 0.724; Otsu on S1 AFTER 0.489",
    },
    modalities={
        "s1": Modality(
            files=(
                "OmbriaS1/{train,test}/AFTER/S1_after_<id>.png",
                "OmbriaS1/{train,test}/BEFORE/S1_before_<id>.png",
            ),
            dtype="uint8 (grey PNG)",
            units=SCALED_0_255.stored,
            nodata="none",
            note="Sentinel-1 VV only; VV = post-event (AFTER), VV_pre = pre-event "
            "(BEFORE), co-registered",
        ),
        "s2": Modality(
            files=("OmbriaS2/{train,test}/AFTER/S2_after_<id>.png",),
            dtype="uint8 (RGB PNG: B11, B8, B3)",
            units=f"reflectance x 255 on disk -> {REFLECTANCE}",
            nodata="0 in all three bands -> NaN; a single 0 -> 1",
            note=f"post-event; derived NDWI and MNDWI ({INDEX})",
        ),
        "label": Modality(
            files=("OmbriaS1/{train,test}/MASK/S1_mask_<id>.png",),
            dtype="uint8",
            coding={255: "flood", 0: "dry", "other": "invalid (-1)"},
        ),
    },
    label=LabelCoding(
        source="OmbriaS1 MASK (the S2 masks are identical)",
        classes={-1: "invalid", 0: "dry (permanent water included)", 1: "flood"},
    ),
    splits=Splits(
        group="the patch itself",
        names={"train": "train", "test": "test"},
        note="val: val_fraction (0.1) of train drawn with val_seed; the official test "
        "split is a random patch split of the same events, so neighbours leak",
    ),
)
DATASET = register_dataset(DatasetEntry(OmbriaReader, synth.write, synth.count, CARD))
