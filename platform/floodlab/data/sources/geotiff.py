"""Reader of a researcher's own folder of GeoTIFF chips and masks, paired by file patterns."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from floodlab.data.geotiff import raster_info
from floodlab.data.registry import DatasetEntry, register_dataset
from floodlab.data.sources.base import Chip, ChipRef
from floodlab.data.sources.generic import (
    BAND_MODALITY,
    ImageRef,
    OwnDataReader,
    as_list,
    band_name,
    description_names,
    own_data_card,
    split_folder,
)
from floodlab.data.sources.patterns import (
    FilePattern,
    Match,
    image_patterns,
    read_split_csv,
    unmatched_error,
)
from floodlab.data.synth import geotiff as synth
from floodlab.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

SPLIT_RULES = ("auto", "random")
SYNTH_HINT = "`floodlab synth geotiff --out DIR` writes a synthetic folder in the default layout"


class GeoTiffReader(OwnDataReader):
    """Your own chips: image and label GeoTIFFs (or any raster GDAL reads) under one folder.

    Files are paired by patterns (`floodlab.data.sources.patterns`): each image pattern
    finds one file per chip, the label pattern(s) one label per chip, and the part of a
    file's path that the wildcards match is the chip id. The default layout::

        images/<chip>.tif     image bands, named by their band descriptions
        labels/<chip>.tif     1 water, 0 dry, -1 / nodata tag invalid

    Band names come from the `{band}` of an image pattern, else from `bands` (in file
    order across the image patterns), else from the files' band descriptions; each must
    be a floodlab band (VV, VH, VV_pre, VH_pre -> "s1" in dB; B1..B12 -> "s2", reflectance
    x 10000; SLOPE, DTM -> "aux"). Every chip keeps its own CRS and transform (chips in
    different CRSs, or in none, share one store); the files of one chip must be the same
    size, and on the same grid when georeferenced. A chip's group is the chip itself.

    Options:
        images: image file patterns, one file per pattern and chip (comma-separated text
            or a list); `{band}` stands for each of `bands`.
        labels: label file pattern(s); several patterns are alternatives.
        bands: image band names in file order (default: the band descriptions).
        units: units of the SAR bands (`floodlab.data.units`); None: dB, checked.
        nodata: an image value that is nodata besides each file's own tag.
        label_map: raw label value -> class, e.g. "255=1,0=0,other=invalid"
            (`floodlab.data.sources.generic.LabelMap`); default 1=water, 0=dry, -1=invalid.
        splits: "auto" (default: train/, val/, test/ folders in the image paths, else the
            seeded random grouped split), "random", or a CSV with chip,split columns.
    """

    name = "geotiff"
    split_layout = "a CSV given with --splits, or train/, val/, test/ folders in the image paths"

    def __init__(
        self,
        root: str | Path,
        *,
        images: str | Sequence[str] = ("images/*.tif",),
        labels: str | Sequence[str] = ("labels/*.tif",),
        bands: str | Sequence[str] = (),
        units: str | None = None,
        nodata: float | str | None = None,
        label_map: str | Mapping[Any, Any] | None = None,
        splits: str | None = "auto",
    ):
        super().__init__(
            root, images=images, labels=labels, bands=bands, units=units, nodata=nodata,
            label_map=label_map, splits=splits,
        )  # fmt: skip
        self.band_names = tuple(band_name(b, "--bands") for b in as_list(bands))
        self.images = image_patterns(as_list(images), self.band_names)
        self.labels = [FilePattern.parse(t, "labels", banded_ok=False) for t in as_list(labels)]
        if not self.labels:
            raise ValueError("labels: give a pattern, e.g. --labels 'masks/*.tif'")
        self.splits = splits.strip() if isinstance(splits, str) and splits.strip() else "auto"

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """The default layout: `images/` and `labels/` folders."""
        return (root / "images").is_dir() and (root / "labels").is_dir()

    def list_chips(self) -> list[ChipRef]:
        """Every chip that has a file of each image pattern and a label, sorted by id."""
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"{self.root}: no such folder; point `floodlab convert geotiff` at the folder "
                f"that holds your images and labels, or {SYNTH_HINT}."
            )
        found = {p.text: self._matches([p], "--images") for p in self.images}
        labels = self._matches(self.labels, "--labels")
        found[",".join(p.text for p in self.labels)] = labels
        fix = (
            "Every chip needs one file per --images pattern (per band or bands for {band}) "
            "and one --labels file, paired by what the wildcards match; fix the patterns, or "
            "move the unmatched files away."
        )
        error = unmatched_error(found, self.root, fix)
        if error is not None:
            raise error
        refs: list[ChipRef] = []
        chips: dict[str, list[Match]] = {}
        for key in sorted(labels):
            images = [m for p in self.images for m in _band_order(found[p.text][key])]
            chips[key] = images
        _check_same_bands(chips)
        files = {
            key: {"image": tuple(str(p) for p, _ in images), "label": (str(labels[key][0][0]),)}
            for key, images in chips.items()
        }
        splits = self._splits(files)
        for key, images in chips.items():
            bands = tuple(b for _, b in images)
            refs.append(ImageRef(key, key, splits.get(key), files[key], bands))
        return self.checked_listing(refs)

    def _matches(self, patterns: Sequence[FilePattern], option: str) -> dict[str, list[Match]]:
        """Key -> files over `patterns` (alternatives); DataError when nothing matches."""
        out: dict[str, list[Match]] = {}
        for pattern in patterns:
            for key, matches in pattern.files(self.root).items():
                if key in out:
                    raise DataError(
                        f"{out[key][0][0]} and {matches[0][0]} both give chip id {key!r} "
                        f"({option}); a chip has one such file — narrow the patterns."
                    )
                out[key] = matches
        if not out:
            texts = ", ".join(repr(p.text) for p in patterns)
            raise DatasetNotFoundError(
                f"no files under {self.root} match {option} {texts}; patterns are relative "
                f"to that folder (e.g. {option} 'S1/*.tif'), or {SYNTH_HINT}."
            )
        return out

    def _splits(self, files: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, str]:
        """chip id -> split from the splits CSV or the split folders ({} for random)."""
        if self.splits == "random":
            return {}
        if self.splits == "auto":
            out: dict[str, str] = {}
            folders: set[Path] = set()
            for key, f in files.items():
                found = split_folder(f["image"][0], self.root)
                if found is not None:
                    out[key] = found[0]
                    folders.add(found[1])
            self.note_split_files(sorted(folders), self.root)
            return out
        path = Path(self.splits)
        if not path.is_absolute() and not path.exists() and (self.root / path).exists():
            path = self.root / path
        lookup: dict[str, str] = {}
        for key, f in files.items():
            for name in (*f["image"], *f["label"]):
                lookup[Path(name).relative_to(self.root).as_posix()] = key
                lookup.setdefault(Path(name).name, key)
            lookup[key] = key
        splits = read_split_csv(path, lookup)
        self.split_files = (str(path),)
        return splits

    def read(self, ref: ChipRef) -> Chip:
        """Read one chip; DataError naming the file and the fix when it does not fit.

        Band names: those a `{band}` file name spells, else `--bands` in file order, else
        the band descriptions.
        """
        assert isinstance(ref, ImageRef)
        files = ref.files["image"]
        named = [(p, known) for p, known in zip(files, ref.bands, strict=True) if not known]
        given: dict[str, tuple[str, ...]] = {}
        if self.band_names:  # --bands names the files without {band}, in order
            counts = [raster_info(p).count for p, _ in named]
            if sum(counts) != len(self.band_names):
                have = ", ".join(f"{n} in {p}" for n, (p, _) in zip(counts, named, strict=True))
                raise DataError(
                    f"chip {ref.id}: --bands names {len(self.band_names)} band(s) "
                    f"({', '.join(self.band_names)}) but its image files have {have}; name "
                    "every band of the image files without {band}, in file order."
                )
            start = 0
            for (path, _), n in zip(named, counts, strict=True):
                given[path], start = self.band_names[start : start + n], start + n
        else:
            given = {p: description_names(raster_info(p)) for p, _ in named}
        names = [known or given[p] for p, known in zip(files, ref.bands, strict=True)]
        return self.read_files(ref, names)


def _band_order(matches: list[Match]) -> list[Match]:
    """The files of a {band} pattern in floodlab's band order (of their first band)."""
    order = {b: k for k, b in enumerate(BAND_MODALITY)}
    return sorted(matches, key=lambda m: order[m[1][0]] if m[1] else -1)


def _check_same_bands(chips: Mapping[str, list[Match]]) -> None:
    """DataError naming a chip whose file names spell other bands than the first chip's."""
    spelled = {k: sorted(b for _, bands in m for b in bands) for k, m in chips.items()}
    first = next(iter(spelled), None)
    for key, bands in spelled.items():
        if first is not None and bands != spelled[first]:
            missing = sorted(set(spelled[first]) - set(bands))
            extra = sorted(set(bands) - set(spelled[first]))
            what = f"lacks {missing}" if missing else f"has extra {extra}"
            raise DataError(
                f"chip {key!r} {what} compared with chip {first!r} (bands from the file "
                f"names: {bands} vs {spelled[first]}); a store needs the same bands in every "
                "chip — add the missing files, or narrow --images."
            )


CARD = own_data_card(
    title="Your own GeoTIFF chips and masks",
    source="your own folder of image and label rasters (GeoTIFF, COG, or anything GDAL reads)",
    facts={
        "georeferencing": "per chip: any CRS, or none (then no CRS and the identity transform)",
        "pairing": "files are paired by what the wildcards of --images / --labels match",
    },
    files={
        "s1": "--images patterns (default images/<chip>.tif)",
        "s2": "--images patterns",
        "aux": "--images patterns",
        "label": "--labels pattern (default labels/<chip>.tif)",
    },
    s1_note="VV, VH (and pre-event VV_pre, VH_pre) by band name",
    s2_note="B1..B12 by band name; reflectance in 0..1 is refused (scale by 10000)",
    label_source="the --labels file of each chip, through --label-map",
    split_group="the chip itself",
    split_note="--splits FILE.csv (chip,split columns; unknown chips refused), else "
    "train/ val/ test/ folders in the image paths, else random; --splits random "
    "ignores the folders",
)
DATASET = register_dataset(DatasetEntry(GeoTiffReader, synth.write, synth.count, CARD))
