"""Reader of a local STAC item collection whose assets are (cloud-optimised) GeoTIFF chips."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pystac

from floodlab.data.convert.splits import canonical_split
from floodlab.data.geotiff import is_uri, raster_info
from floodlab.data.registry import DatasetEntry, register_dataset
from floodlab.data.sources import generic
from floodlab.data.sources.base import Chip, ChipRef
from floodlab.data.sources.generic import ImageRef, OwnDataReader
from floodlab.data.synth import stac as synth
from floodlab.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

LABEL = "label"  # the asset mapping's target for the label asset
OWN_NAMES = "*"  # the asset mapping's target for "the asset names its own bands"
LABEL_KEYS = ("label", "labels", "mask")  # asset keys taken as the label without a mapping
LABEL_ROLES = ("labels", "labels-raster")
SYNTH_HINT = "`floodlab synth stac --out DIR` writes a synthetic item collection"
ASSETS_EXAMPLE = "--assets vv=VV,vh=VH,mask=label"
_SPLIT_NAME = re.compile(r"[a-z][a-z0-9_]*")


def parse_assets(spec: str | Mapping[str, Any] | None) -> dict[str, str] | None:
    """Asset key -> target ("VV", "VV+VH", "*" or "label") from ``vv=VV,mask=label``.

    Raises:
        ValueError: an entry that is not KEY=TARGET, or a band name floodlab lacks.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, str):
        pairs = generic.key_value_pairs(spec, "assets", f"KEY=TARGET, e.g. {ASSETS_EXAMPLE}")
    else:
        pairs = [
            (str(k), "+".join(v) if isinstance(v, list | tuple) else str(v))
            for k, v in spec.items()
        ]
    out: dict[str, str] = {}
    for key, target in pairs:
        if target.lower() == LABEL:
            out[key] = LABEL
        elif target == OWN_NAMES:
            out[key] = OWN_NAMES
        else:
            names = [generic.band_name(b, f"assets {key}={target}") for b in target.split("+")]
            out[key] = "+".join(names)
    if list(out.values()).count(LABEL) != 1:
        raise ValueError(
            f"assets {spec!r}: map exactly one asset to `label`, e.g. {ASSETS_EXAMPLE}"
        )
    if len(out) < 2:
        raise ValueError(f"assets {spec!r}: map at least one image asset, e.g. {ASSETS_EXAMPLE}")
    return out


def _asset_band_names(asset: pystac.Asset) -> tuple[str, ...]:
    """Band names the asset's metadata gives (`eo:bands` or STAC 1.1 `bands`), if all known."""
    listed = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    names = [b.get("name", "") for b in listed if isinstance(b, dict)]
    if names and all(n.lower() in generic.BAND_SPELLINGS for n in names):
        return tuple(generic.BAND_SPELLINGS[n.lower()] for n in names)
    return ()


def resolve_href(href: str, base: Path) -> str:
    """A local path (relative hrefs against the JSON's folder) or a URI GDAL opens."""
    if href.startswith("file://"):
        return href[len("file://") :]
    if is_uri(href) or Path(href).is_absolute():
        return href
    return str(base / href)


class StacReader(OwnDataReader):
    """Your own chips as a local STAC item collection; every item is a chip.

    The source is an ItemCollection (GeoJSON FeatureCollection) file, one item JSON, or
    a folder searched for both (other JSON files, such as catalog.json, are skipped). Asset
    hrefs may be paths relative to their JSON file, absolute paths, or URIs GDAL opens.

    Assets are mapped to bands with `assets` (``--assets vv=VV,vh=VH,mask=label``): a
    band name, several joined by ``+`` for a multi-band asset in file order, ``*`` for
    the band names of the asset's ``eo:bands``/``bands`` (else the file's band
    descriptions), and ``label`` for the label asset; other assets are ignored. Without
    `assets`, an asset whose key is a floodlab band name (any case: vv, VH) is that band,
    one whose ``eo:bands`` are all floodlab bands holds them, and the asset keyed label,
    labels or mask (or with role labels / labels-raster) is the label.

    Bands, units, nodata and label values are read as by the geotiff reader
    (`floodlab.data.sources.generic`); each chip keeps its own CRS and transform. The split
    of an item is its `split_property` (train/val/test, valid -> val), else the seeded
    random grouped split. A chip's id is the item id, its group the item itself.

    Options:
        assets: asset key -> band(s) or label (text or mapping); default: by key and roles.
        split_property: the item property holding the split ("" or None: none).
        units, nodata, label_map: as for the geotiff reader.
    """

    name = "stac"
    split_layout = "an item property (--split-property, default `split`)"

    def __init__(
        self,
        root: str | Path,
        *,
        assets: str | Mapping[str, Any] | None = None,
        split_property: str | None = "split",
        units: str | None = None,
        nodata: float | str | None = None,
        label_map: str | Mapping[Any, Any] | None = None,
    ):
        super().__init__(
            root, assets=assets, split_property=split_property, units=units, nodata=nodata,
            label_map=label_map,
        )  # fmt: skip
        self.assets = parse_assets(assets)
        self.split_property = (split_property or "").strip()

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A folder with a STAC catalog.json, collection.json or items.json."""
        return any((root / n).is_file() for n in ("catalog.json", "collection.json", "items.json"))

    def _items(self) -> Iterator[tuple[pystac.Item, Path]]:
        """Every item of the source with the JSON file it came from."""
        if not self.root.exists():
            raise DatasetNotFoundError(
                f"{self.root}: no such file or folder; point `floodlab convert stac` at an "
                f"item collection JSON or a folder of item JSONs, or {SYNTH_HINT}."
            )
        paths = [self.root] if self.root.is_file() else sorted(self.root.rglob("*.json"))
        for path in paths:
            try:
                data = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise DataError(f"{path}: not a readable JSON file ({e}); fix or remove it.") from e
            kind = data.get("type") if isinstance(data, dict) else None
            try:
                if kind == "FeatureCollection":
                    for item in pystac.ItemCollection.from_dict(data):
                        yield item, path
                elif kind == "Feature":
                    yield pystac.Item.from_dict(data), path
            except Exception as e:  # pystac raises several types for malformed items
                raise DataError(
                    f"{path}: not a valid STAC item or item collection ({type(e).__name__}: "
                    f"{e}); fix the JSON."
                ) from e

    def list_chips(self) -> list[ChipRef]:
        """Every item, as a chip with its image assets and label asset, sorted by id."""
        refs: list[ChipRef] = []
        seen: dict[str, Path] = {}
        with_split = 0
        for item, path in self._items():
            if item.id in seen:
                raise DataError(
                    f"item id {item.id!r} is in both {seen[item.id]} and {path}; item ids name "
                    "the chips and must be unique."
                )
            seen[item.id] = path
            images, label = self._assets_of(item, path)
            split = self._split_of(item, path)
            with_split += split is not None
            files = {"image": tuple(h for h, _ in images), "label": (label,)}
            refs.append(ImageRef(item.id, item.id, split, files, tuple(n for _, n in images)))
        if not refs:
            raise DatasetNotFoundError(
                f"no STAC items in {self.root} (JSON files of type Feature or "
                f"FeatureCollection); {SYNTH_HINT}."
            )
        self.note_split_files([self.root] if with_split else [], self.root)
        return self.checked_listing(refs)

    def _assets_of(
        self, item: pystac.Item, path: Path
    ) -> tuple[list[tuple[str, tuple[str, ...]]], str]:
        """[(href, band names or () when the file names them)] and the label href of an item."""
        base = path.parent
        images: list[tuple[str, tuple[str, ...]]] = []
        labels: list[str] = []
        if self.assets is not None:
            for key, target in self.assets.items():
                asset = item.assets.get(key)
                if asset is None:
                    raise DataError(
                        f"item {item.id} ({path}) has no asset {key!r} (it has "
                        f"{', '.join(item.assets) or 'none'}); fix --assets or the item."
                    )
                href = resolve_href(asset.href, base)
                if target == LABEL:
                    labels.append(href)
                elif target == OWN_NAMES:
                    images.append((href, _asset_band_names(asset)))
                else:
                    images.append((href, tuple(target.split("+"))))
        else:
            for key, asset in item.assets.items():
                href = resolve_href(asset.href, base)
                if key.lower() in LABEL_KEYS or set(asset.roles or ()) & set(LABEL_ROLES):
                    labels.append(href)
                elif key.lower() in generic.BAND_SPELLINGS:
                    images.append((href, (generic.BAND_SPELLINGS[key.lower()],)))
                elif names := _asset_band_names(asset):
                    images.append((href, names))
        if len(labels) != 1 or not images:
            found = "several label assets" if len(labels) > 1 else (
                "no label asset" if not labels else "no image asset"
            )  # fmt: skip
            raise DataError(
                f"item {item.id} ({path}): {found} among its assets "
                f"({', '.join(item.assets) or 'none'}); say which asset is which with "
                f"{ASSETS_EXAMPLE} (a band name, VV+VH for a multi-band asset, * for the "
                "asset's own band names, label for the mask)."
            )
        return images, labels[0]

    def _split_of(self, item: pystac.Item, path: Path) -> str | None:
        """The item's split property, canonical; None when the item has none."""
        if not self.split_property or self.split_property not in item.properties:
            return None
        value = item.properties[self.split_property]
        split = canonical_split(str(value)) if isinstance(value, str) else ""
        if not _SPLIT_NAME.fullmatch(split):
            raise DataError(
                f"item {item.id} ({path}): property {self.split_property}={value!r} is not a "
                "split name; use train, val or test (or drop the property for a random split)."
            )
        return split

    def read(self, ref: ChipRef) -> Chip:
        """Read one item's assets; DataError naming the file and the fix when they do not fit."""
        assert isinstance(ref, ImageRef)
        names = [
            known or generic.description_names(raster_info(href))
            for href, known in zip(ref.files["image"], ref.bands, strict=True)
        ]
        return self.read_files(ref, names)


CARD = generic.own_data_card(
    title="Your own chips as a STAC item collection",
    source="a local STAC ItemCollection / item JSONs whose assets are (cloud-optimised) GeoTIFFs",
    facts={
        "georeferencing": "per chip, from its assets: any CRS or none",
        "assets": "--assets KEY=BAND[+BAND...]|*|label; default by asset key, eo:bands, roles",
    },
    files={
        "s1": "item assets mapped to VV, VH (VV_pre, VH_pre)",
        "s2": "item assets mapped to B1..B12",
        "label": "the item asset mapped to label",
    },
    label_source="the label asset of each item, through --label-map",
    split_group="the item itself",
    split_note="the item property --split-property (default split); items without it get "
    "the random split",
)
DATASET = register_dataset(DatasetEntry(StacReader, synth.write, synth.count, CARD))
