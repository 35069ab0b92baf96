"""Synthetic STAC item collection: `items.json` whose items point at COG assets in two CRSs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac

from floodlab.bands import S2_BANDS
from floodlab.data.geotiff import write_raster
from floodlab.data.registry import Progress
from floodlab.data.synth.geotiff import LABEL_NODATA, transform_of
from floodlab.data.synth.scene import make_scene
from floodlab.data.synth.splitplan import split_groups
from floodlab.io import atomic_write_text

COG = {"driver": "COG"}
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
ITEMS = "items.json"


def _bbox(crs: str, transform: tuple[float, ...], size: int) -> list[float]:
    """Lon/lat bounding box of a chip (its footprint, for the item's geometry)."""
    from rasterio.warp import transform_bounds

    a, _, c, _, e, f = transform
    x = (c, c + a * size)
    y = (f + e * size, f)
    west, south, east, north = transform_bounds(crs, "EPSG:4326", x[0], y[0], x[1], y[1])
    return [west, south, east, north]


def write(
    root: Path, chips: int, size: int, seed: int, progress: Progress | None = None, **options: Any
) -> Path:
    """Write `chips` items `chip_<iii>` into `root/items.json` with COGs under `root/cogs/`.

    Per item: assets `vv`, `vh`, `vv_pre`, `vh_pre` (one-band float32 dB COGs, NaN nodata),
    `s2` (13-band uint16 reflectance x 10000 with `eo:bands`, nodata 0), `label` (uint8
    1 water, 0 dry, 255 invalid, role `labels`) and a `thumbnail` the reader ignores;
    property `split` of an ~80/10/10 split; chips alternate between UTM 33N and lon/lat.
    """
    splits = split_groups(chips, {"train": 0.8, "val": 0.1, "test": 0.1})
    items = []
    for i in range(chips):
        chip = f"chip_{i:03d}"
        scene = make_scene(np.random.default_rng([seed, 80, i]), size, pre_event=True)
        assert scene.sar_db_pre is not None
        crs, tf = transform_of(i, size)
        cogs = root / "cogs"
        layers: dict[str, tuple[np.ndarray, Any]] = {
            "vv": (scene.sar_db[0], float("nan")),
            "vh": (scene.sar_db[1], float("nan")),
            "vv_pre": (scene.sar_db_pre[0], float("nan")),
            "vh_pre": (scene.sar_db_pre[1], float("nan")),
            "s2": (scene.s2.astype(np.uint16), 0),
            "label": (np.where(scene.label < 0, LABEL_NODATA, scene.label).astype(np.uint8), 255),
        }
        for key, (data, nodata) in layers.items():
            write_raster(
                cogs / f"{chip}_{key}.tif", data, crs=crs, transform=tf,
                nodata=nodata, creation_options=COG,
            )  # fmt: skip
        west, south, east, north = _bbox(crs, tf, size)
        item = pystac.Item(
            id=chip,
            geometry={
                "type": "Polygon",
                "coordinates": [
                    [[west, south], [east, south], [east, north], [west, north], [west, south]]
                ],
            },
            bbox=[west, south, east, north],
            datetime=dt.datetime(2024, 5, 1 + i % 28, tzinfo=dt.UTC),
            properties={"split": splits[i], "proj:code": crs},
        )
        for key in layers:
            extra: dict[str, Any] = {}
            if key == "s2":
                extra["eo:bands"] = [{"name": b} for b in S2_BANDS]
            roles = ["labels"] if key == "label" else ["data"]
            item.add_asset(
                key,
                pystac.Asset(f"cogs/{chip}_{key}.tif", media_type=COG_TYPE, roles=roles,
                             extra_fields=extra),
            )  # fmt: skip
        item.add_asset("thumbnail", pystac.Asset(f"thumbs/{chip}.png", roles=["thumbnail"]))
        items.append(item.to_dict(include_self_link=False))
        if progress:
            progress(1)
    collection = {"type": "FeatureCollection", "features": items}
    atomic_write_text(root / ITEMS, json.dumps(collection, indent=1) + "\n")
    return root


def count(chips: int, **options: Any) -> int:
    """Number of items `write` produces."""
    return chips
