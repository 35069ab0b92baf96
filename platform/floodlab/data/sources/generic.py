"""What the bring-your-own-data sources (geotiff, stac) share: bands, label maps, chip reads.

A researcher's own chips are named by band: every image band must be one of floodlab's
band names (`BAND_MODALITY`), which also decides the array it is stored in — SAR bands
in "s1" (converted to dB through `floodlab.data.units`), Sentinel-2 bands in "s2"
(reflectance x 10000) and DeepFlood-style terrain layers in "aux". Labels are mapped to
floodlab's coding (1 water, 0 dry, -1 invalid) by a `LabelMap`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from floodlab.bands import AUX_BANDS, S1_BANDS, S1_PRE_BANDS, S2_BANDS
from floodlab.data.cards import DB, DatasetCard, LabelCoding, Modality, Splits
from floodlab.data.convert.splits import canonical_split
from floodlab.data.geotiff import IDENTITY, RasterInfo, check_aligned, nodata_mask, read_raster
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.units import sar_to_db
from floodlab.errors import DataError

# Modality -> the band names it stores, in store order (the readers' `bands`).
GENERIC_BANDS: dict[str, tuple[str, ...]] = {
    "s1": S1_BANDS + S1_PRE_BANDS,
    "s2": S2_BANDS,
    "aux": AUX_BANDS,
}
# Band name -> modality, and any spelling (case-insensitive) -> the band name.
BAND_MODALITY: dict[str, str] = {b: m for m, names in GENERIC_BANDS.items() for b in names}
BAND_SPELLINGS: dict[str, str] = {b.lower(): b for b in BAND_MODALITY}
KNOWN_BANDS = ", ".join(BAND_MODALITY)
# Reflectance x 10000 of real land and water exceeds this; a band whose values all stay
# below it holds reflectance in 0..1 (or is empty), which the uint16 store would zero out.
UNIT_REFLECTANCE_MAX = 2.0
WATER, DRY, INVALID = 1, 0, -1
_TARGETS = {"1": WATER, "water": WATER, "0": DRY, "dry": DRY, "-1": INVALID, "invalid": INVALID}
CLASS_NAMES = {WATER: "water", DRY: "dry", INVALID: "invalid"}
_OTHER = ("other", "*")
# Folder names that give a chip's split (canonical names; aliases such as valid/ too).
SPLIT_NAMES = ("train", "val", "test")


def as_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A comma-separated string or a sequence as a tuple of non-empty, stripped items."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(s.strip() for s in items if s.strip())


def key_value_pairs(text: str, option: str, form: str) -> list[tuple[str, str]]:
    """``a=b,c=d`` as [(a, b), (c, d)], stripped.

    Raises:
        ValueError: an entry without ``=``, or with an empty side, naming `option` and the
            `form` its entries take.
    """
    pairs = []
    for item in as_list(text):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{option} entry {item!r} is not {form}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def band_name(name: str, where: str) -> str:
    """floodlab's spelling of band `name` (any case); DataError naming `where` if unknown."""
    band = BAND_SPELLINGS.get(name.strip().lower())
    if band is None:
        raise DataError(
            f"{where}: unknown band name {name!r}; floodlab's bands are {KNOWN_BANDS}. Name "
            "the image bands with --bands (e.g. --bands VV,VH) or fix the band descriptions."
        )
    return band


def nodata_value(value: float | str | None) -> float | None:
    """The `nodata` option as a float (None: only the files' own nodata tags)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            f"nodata must be a number, e.g. --nodata -9999, but got {value!r}"
        ) from None


@dataclass(frozen=True)
class LabelMap:
    """How raw label values become floodlab's label coding (1 water, 0 dry, -1 invalid).

    Written ``255=1,0=0,-1=invalid`` (``--label-map``): each ``VALUE=CLASS`` maps a raw
    value to 1/water, 0/dry or -1/invalid; ``other=CLASS`` maps every value not listed.
    Without ``other``, a value that is not listed is an error, so a 0/255 mask is never
    silently read as "all water invalid". Pixels at the label file's nodata tag, and NaN,
    are invalid unless the map lists that value.

    Attributes:
        values: raw value -> class (1, 0 or -1).
        other: class of every value not listed; None: such values are an error.
    """

    values: Mapping[float, int]
    other: int | None = None

    @classmethod
    def parse(cls, spec: str | Mapping[Any, Any] | None) -> LabelMap:
        """A map from its text (``255=1,0=0,other=invalid``) or a mapping; None: the default
        ``1=water,0=dry,-1=invalid``.

        Raises:
            ValueError: an entry that is not ``VALUE=CLASS`` with a numeric value and a
                class among 1/water, 0/dry, -1/invalid.
        """
        if spec is None or (isinstance(spec, str) and not spec.strip()):
            return DEFAULT_LABEL_MAP
        if isinstance(spec, str):
            pairs = key_value_pairs(spec, "label_map", "VALUE=CLASS (e.g. 255=1)")
        else:
            pairs = [(str(k).strip(), str(v).strip()) for k, v in spec.items()]
        values: dict[float, int] = {}
        other: int | None = None
        for key, target in pairs:
            cls_ = _TARGETS.get(target.lower())
            if cls_ is None:
                raise ValueError(
                    f"label_map {key}={target}: the class must be 1/water, 0/dry or -1/invalid"
                )
            if key.lower() in _OTHER:
                other = cls_
                continue
            try:
                values[float(key)] = cls_
            except ValueError:
                raise ValueError(
                    f"label_map {key}={target}: {key!r} is not a number (or `other`)"
                ) from None
        return cls(values, other)

    def describe(self) -> str:
        """The map as ``--label-map`` text, e.g. ``255=water,0=dry,other=invalid``."""
        parts = [f"{_number(k)}={CLASS_NAMES[v]}" for k, v in self.values.items()]
        if self.other is not None:
            parts.append(f"other={CLASS_NAMES[self.other]}")
        return ",".join(parts)

    def apply(self, raw: np.ndarray, nodata: float | None, where: str) -> np.ndarray:
        """(H, W) raw label values -> int8 floodlab labels.

        Raises:
            DataError: values the map does not list (and no `other`), naming `where`.
        """
        out = np.full(raw.shape, INVALID if self.other is None else self.other, dtype=np.int8)
        listed = np.zeros(raw.shape, dtype=bool)
        for value, cls_ in self.values.items():
            if raw.dtype.kind == "f":
                hit = raw == np.asarray(value, dtype=raw.dtype)
            elif _fits(value, raw.dtype):
                hit = raw == value
            else:
                continue  # e.g. -1 in a uint8 mask: no pixel can hold it
            out[hit] = cls_
            listed |= hit
        untagged = ~listed & nodata_mask(raw, nodata)
        out[untagged] = INVALID  # nodata tag and NaN, unless the map names the value
        unknown = ~listed & ~untagged
        if self.other is None and unknown.any():
            found = np.unique(raw[unknown])
            shown = ", ".join(_number(v) for v in found[:8]) + (", ..." if found.size > 8 else "")
            example = f"{_number(found[-1])}=1"  # the highest code is water in most masks
            raise DataError(
                f"{where}: label values {shown} are not in the label map "
                f"({self.describe()}); say what they mean with --label-map, e.g. "
                f"--label-map {example},0=0 (1/water, 0/dry, -1/invalid), or add other=invalid "
                "to make every unlisted value invalid."
            )
        return out


def _number(value: float) -> str:
    """1.0 -> '1', 0.5 -> '0.5'."""
    v = float(value)
    return str(int(v)) if math.isfinite(v) and v == int(v) else f"{v:g}"


def _fits(value: float, dtype: np.dtype) -> bool:
    """True when integer pixels of `dtype` can equal `value` (non-integer values never do)."""
    if not math.isfinite(value) or value != int(value):
        return False
    info = np.iinfo(dtype)
    return info.min <= int(value) <= info.max


DEFAULT_LABEL_MAP = LabelMap({1.0: WATER, 0.0: DRY, -1.0: INVALID})


@dataclass(frozen=True)
class ImageRef(ChipRef):
    """A chip of a generic source: files["image"] are its image files, files["label"] its
    label file, and `bands` the band names the listing already knows, one tuple per image
    file (empty: named when the chip is read, from --bands or the band descriptions)."""

    bands: tuple[tuple[str, ...], ...] = ()


def description_names(info: RasterInfo) -> tuple[str, ...]:
    """The band names a file's band descriptions give; DataError when a band has none."""
    if not all(info.descriptions):
        raise DataError(
            f"{info.path}: its {info.count} band(s) have no band descriptions to name them "
            f"(found {list(info.descriptions)}); name them with --bands (e.g. --bands VV,VH) "
            "or, for STAC, in the asset mapping (e.g. --assets image=VV+VH)."
        )
    return tuple(str(d) for d in info.descriptions)


def _aligned(a: RasterInfo, b: RasterInfo) -> None:
    """Same size, and the same grid when both files are georeferenced; DataError otherwise.

    A file without a CRS (a mask exported as a plain image) is aligned by its size alone.
    """
    if a.shape != b.shape:
        raise DataError(
            f"{a.path} is {a.height}x{a.width} pixels but {b.path} is {b.height}x{b.width}; "
            "the images and the label of a chip must cover the same pixels — re-export them "
            "on one grid, or fix the patterns if they pair the wrong files."
        )
    if a.crs and b.crs:
        check_aligned(a, b)


def read_chip(
    ref: ImageRef,
    names: Sequence[tuple[str, ...]],
    *,
    units: str | None,
    nodata: float | None,
    label_map: LabelMap,
) -> Chip:
    """Read one chip from its image files (bands `names`, one tuple per file) and label.

    Image pixels at each file's nodata tag, NaN or `nodata` become NaN; SAR bands are
    checked and converted to dB from `units`; bands are stored per modality in floodlab's
    order. The chip keeps the CRS and transform of its first georeferenced file ("" and the
    identity when none is).

    Raises:
        DataError: unknown or repeated band names, band counts that differ from `names`,
            files of different sizes or grids, reflectance in 0..1, unmapped label values.
        UnitsError: SAR bands that cannot be in `units`.
    """
    layers: dict[str, tuple[np.ndarray, str, str]] = {}  # band -> (H, W), file, dtype
    infos: list[RasterInfo] = []
    extra = () if nodata is None else (nodata,)
    for path, given in zip(ref.files["image"], names, strict=True):
        arr, info = read_raster(path, as_float=True, extra_nodata=extra)
        if info.count != len(given):
            raise DataError(
                f"{path}: has {info.count} band(s) but {len(given)} are named for it "
                f"({', '.join(given)}); name one band per band of the file."
            )
        for c, raw_name in enumerate(given):
            band = band_name(raw_name, f"{path} band {c + 1}")
            if band in layers:
                raise DataError(
                    f"chip {ref.id}: band {band} is in both {layers[band][1]} and {path}; "
                    "each band must come from one file — fix the band names or the patterns."
                )
            layers[band] = (arr[c], str(path), info.dtype)
        infos.append(info)
    raw, label_info = read_raster(ref.files["label"][0])
    if label_info.count != 1:
        raise DataError(
            f"{label_info.path}: a label file must have one band, this one has "
            f"{label_info.count}; export the mask as a single-band raster."
        )
    for info in [*infos[1:], label_info]:
        _aligned(infos[0], info)
    arrays: dict[str, np.ndarray] = {}
    bands: dict[str, tuple[str, ...]] = {}
    for modality, order in GENERIC_BANDS.items():
        present = tuple(b for b in order if b in layers)
        if not present:
            continue
        stack = np.stack([layers[b][0] for b in present]).astype(np.float32)  # (C, H, W)
        if modality == "s1":
            for c, band in enumerate(present):
                _, path, dtype = layers[band]
                stack[c] = sar_to_db(
                    stack[c : c + 1], (band,), dtype=dtype, units=units, where=path
                )[0]
        elif modality == "s2":
            _check_reflectance(stack, present, [layers[b][1] for b in present])
        arrays[modality], bands[modality] = stack, present
    arrays["label"] = label_map.apply(raw[0], label_info.nodata, label_info.path)
    geo = next((i for i in [*infos, label_info] if i.crs), None)
    return Chip(
        ref=ref,
        arrays=arrays,
        bands=bands,
        crs=geo.crs if geo else "",
        transform=geo.transform if geo else IDENTITY,
        meta={"label_source": "hand"},
    )


def _check_reflectance(stack: np.ndarray, bands: Sequence[str], files: Sequence[str]) -> None:
    """DataError for optical bands that hold reflectance in 0..1 instead of x 10000."""
    for c, band in enumerate(bands):
        values = stack[c][np.isfinite(stack[c])]
        if values.size and float(np.abs(values).max()) <= UNIT_REFLECTANCE_MAX:
            raise DataError(
                f"{files[c]} band {band}: values {float(values.min()):g}..{float(values.max()):g} "
                "look like reflectance in 0..1, but floodlab stores Sentinel-2 bands as "
                "reflectance x 10000 (as ESA's products are); scale the files by 10000."
            )


def split_folder(path: str | Path, root: Path) -> tuple[str, Path] | None:
    """The split a file's folders name (train/, val/, test/ and aliases such as valid/),
    with that folder; None when no folder under `root` names a split."""
    rel = Path(path).relative_to(root).parts[:-1]
    for k in range(len(rel) - 1, -1, -1):
        split = canonical_split(rel[k])
        if split in SPLIT_NAMES:
            return split, root.joinpath(*rel[: k + 1])
    return None


class OwnDataReader(SourceReader):
    """What the geotiff and stac readers share: floodlab's band names for a researcher's
    bands, the `nodata` and `label_map` options, and reading a chip from its files.

    Subclasses list every option in their own signature (the CLI and its errors name them
    from it) and pass them all on to this constructor.
    """

    bands: ClassVar[dict[str, tuple[str, ...]]] = GENERIC_BANDS

    def __init__(
        self,
        root: str | Path,
        *,
        nodata: float | str | None = None,
        label_map: str | Mapping[Any, Any] | None = None,
        **options: Any,
    ):
        super().__init__(root, nodata=nodata, label_map=label_map, **options)
        self.nodata = nodata_value(nodata)
        self.label_map = LabelMap.parse(label_map)

    def read_files(self, ref: ChipRef, names: Sequence[tuple[str, ...]]) -> Chip:
        """`read_chip` with this reader's units, nodata and label map."""
        assert isinstance(ref, ImageRef)
        return read_chip(ref, names, units=self.units, nodata=self.nodata, label_map=self.label_map)


NODATA_NOTE = "the file's tag, NaN, or --nodata -> NaN"


def own_data_card(
    *,
    title: str,
    source: str,
    facts: dict[str, str],
    files: Mapping[str, str],
    label_source: str,
    split_group: str,
    split_note: str,
    s1_note: str = "",
    s2_note: str = "reflectance in 0..1 is refused (scale by 10000)",
) -> DatasetCard:
    """The card of a bring-your-own-data source: what its files may hold, in floodlab's terms.

    Args:
        files: modality ("s1", "s2", "label", and "aux" if the source reads terrain layers)
            -> where its files come from.
    """
    modalities = {
        "s1": Modality(
            files=(files["s1"],), dtype="any (float32 for dB)", units=DB, nodata=NODATA_NOTE,
            note=s1_note,
        ),
        "s2": Modality.reflectance(
            (files["s2"],), dtype="any integer or float", nodata=NODATA_NOTE, note=s2_note
        ),
    }  # fmt: skip
    if "aux" in files:
        modalities["aux"] = Modality(
            files=(files["aux"],), dtype="any", units="as stored", nodata="as s1"
        )
    modalities["label"] = Modality(
        files=(files["label"],),
        dtype="any, one band",
        coding={1: "water", 0: "dry", -1: "invalid", "other": "refused, or --label-map"},
        nodata="the file's tag -> invalid, unless --label-map lists the value",
    )
    return DatasetCard(
        title=title,
        source=source,
        licence="that of your data",
        citation="cite the sources of your chips",
        facts=facts,
        modalities=modalities,
        label=LabelCoding(
            source=label_source,
            classes={-1: "invalid", 0: "dry", 1: "water"},
            note="--label-map 255=1,0=0,other=invalid maps other codings",
        ),
        splits=Splits(
            group=split_group,
            names={"train": "train", "val": "val", "valid": "val", "test": "test"},
            note=split_note,
        ),
    )
