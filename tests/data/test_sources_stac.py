"""`floodlab convert stac`: a local STAC item collection of COG chips becomes a store."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.data.geotiff import write_raster
from floodlab.data.load.store import open_store

SIZE = 32
UTM = ("EPSG:32633", (10.0, 0.0, 500_000.0, 0.0, -10.0, 5_000_000.0))
LONLAT = ("EPSG:4326", (9e-05, 0.0, 14.0, 0.0, -9e-05, 45.0))
# item id -> (grid, split property)
ITEMS: dict[str, tuple[tuple[str, tuple[float, ...]], str]] = {
    "s1_2024_a": (UTM, "train"),
    "s1_2024_b": (UTM, "train"),
    "s1_2024_c": (LONLAT, "valid"),  # an alias: becomes val
    "s1_2024_d": (LONLAT, "train"),
    "s1_2024_e": (UTM, "test"),
}
ASSETS = ["--assets", "vv=VV,vh=VH,mask=label", "--label-map", "255=1,0=0"]


def scene(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(2, H, W) VV, VH in dB (water dark) and its uint8 0/255 mask."""
    rng = np.random.default_rng(100 + k)
    water = np.zeros((SIZE, SIZE), dtype=bool)
    water[: 6 + 3 * k] = True
    vv = np.where(water, -21.0, -9.0) + rng.normal(0, 1, water.shape)
    return np.stack([vv, vv - 6.0]).astype(np.float32), np.where(water, 255, 0).astype(np.uint8)


def write_items(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """COGs under `root/cogs/` and the item dicts pointing at them (relative hrefs, the last
    item's mask by absolute path); returns the items and what each chip reads back as."""
    items, want = [], {}
    for k, (item_id, ((crs, tf), split)) in enumerate(ITEMS.items()):
        sar, mask = scene(k)
        layers = {"vv": sar[0], "vh": sar[1], "mask": mask}
        for key, data in layers.items():
            write_raster(
                root / "cogs" / f"{item_id}_{key}.tif", data, crs=crs, transform=tf,
                creation_options={"driver": "COG"},
            )  # fmt: skip
        item = pystac.Item(
            id=item_id,
            geometry=None,
            bbox=None,
            datetime=dt.datetime(2024, 5, 1 + k, tzinfo=dt.UTC),
            properties={"split": split},
        )
        for key in layers:
            href = f"cogs/{item_id}_{key}.tif"
            if key == "mask" and k == len(ITEMS) - 1:
                href = str(root / href)
            item.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG))
        item.add_asset("thumbnail", pystac.Asset("thumbs/none.png", roles=["thumbnail"]))
        items.append(item.to_dict(include_self_link=False))
        want[item_id] = {"sar": sar, "label": (mask == 255).astype(np.int8), "crs": crs, "tf": tf}
    return items, want


def collection(root: Path) -> dict[str, Any]:
    """`root/items.json` as an ItemCollection; returns what each chip reads back as."""
    items, want = write_items(root)
    (root / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return want


def convert(src: Path, out: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["convert", "stac", str(src), "--out", str(out), *args])


@pytest.fixture(scope="module")
def stac_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The converted collection and what each chip should read back as."""
    root = tmp_path_factory.mktemp("stac")
    want = collection(root)
    out = root.parent / "stac.zarr"
    result = convert(root / "items.json", out, *ASSETS, "--derive", "RATIO,MAGNITUDE")
    assert result.exit_code == 0, result.output
    return out, want


def test_item_collection_converts_with_bands_crs_labels_and_splits(stac_store) -> None:
    out, want = stac_store
    with rasterio.open(next((out.parent / "stac0" / "cogs").glob("*_vv.tif"))) as f:
        assert f.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"  # the assets really are COGs
    store = open_store(out)
    assert list(store.ids) == sorted(ITEMS)
    assert store.bands("s1") == ("VV", "VH")
    for i, chip in enumerate(store.ids):
        np.testing.assert_array_equal(store.read_bands(i, ["VV", "VH"]), want[chip]["sar"])
        assert store.crs(i) == want[chip]["crs"]
        assert store.transform(i) == pytest.approx(want[chip]["tf"])
        label = store.read_raw(i, ["label"])["label"]
        np.testing.assert_array_equal(label, want[chip]["label"])  # 255 -> 1, 0 -> 0
    assert dict(zip(store.ids, store.splits, strict=True)) == {
        "s1_2024_a": "train", "s1_2024_b": "train", "s1_2024_c": "val", "s1_2024_d": "train",
        "s1_2024_e": "test",
    }  # fmt: skip
    assert store.attrs["provenance"]["splits"]["method"] == "official"


def test_one_epoch_trains_on_the_collection_and_maps_a_scene(
    stac_store, one_epoch, predict, tmp_path: Path
) -> None:
    record, run = one_epoch(stac_store[0], "stac", tmp_path / "runs")
    assert math.isfinite(record["train/loss"]) and 0.0 <= record["val/iou"] <= 1.0
    # The test item's own COG assets, one per band, as the scene to map.
    cogs = stac_store[0].parent / "stac0" / "cogs"
    crs, transform, mask = predict(run, [cogs / f"s1_2024_e_{b}.tif" for b in ("vv", "vh")],
                                   tmp_path / "map.tif", "--bands", "VV,VH")  # fmt: skip
    want = stac_store[1]["s1_2024_e"]
    assert crs == rasterio.crs.CRS.from_user_input(want["crs"])
    assert tuple(transform)[:6] == pytest.approx(tuple(want["tf"])[:6])
    assert mask.shape == want["label"].shape


def test_a_folder_of_item_jsons_with_assets_found_by_key(stac_store, tmp_path: Path) -> None:
    src = tmp_path / "src"  # the output goes beside the source, not inside it
    src.mkdir()
    items, _ = write_items(src)
    for item in items:
        item["assets"]["label"] = item["assets"].pop("mask")  # keys vv, vh, label: no --assets
        (src / "items" / f"{item['id']}.json").parent.mkdir(exist_ok=True)
        for asset in item["assets"].values():
            if not Path(asset["href"]).is_absolute():
                asset["href"] = "../" + asset["href"]  # relative to the item's own JSON
        (src / "items" / f"{item['id']}.json").write_text(json.dumps(item))
    (src / "catalog.json").write_text(json.dumps({"type": "Catalog", "id": "c"}))
    out = tmp_path / "folder.zarr"
    result = convert(src, out, "--label-map", "255=1,0=0", "--split-property", "")
    assert result.exit_code == 0, result.output
    store, reference = open_store(out), open_store(stac_store[0])
    assert list(store.ids) == list(reference.ids)
    for i in range(len(store)):
        np.testing.assert_array_equal(store.read_raw(i, ["label"])["label"],
                                      reference.read_raw(i, ["label"])["label"])  # fmt: skip
    assert store.attrs["provenance"]["splits"]["method"] == "random"  # property ignored


def test_an_item_without_a_mapped_asset_names_the_item_and_its_assets(tmp_path: Path) -> None:
    collection(tmp_path)
    out = tmp_path / "s.zarr"
    result = convert(tmp_path / "items.json", out, "--assets", "vv=VV,vh=VH,water=label")
    assert result.exit_code == 2 and "Traceback" not in result.output and not out.exists()
    text = " ".join(result.output.split())
    assert "item s1_2024_a" in text and "items.json) has no asset 'water'" in text
    assert "it has vv, vh, mask, thumbnail" in text and "fix --assets" in text


def test_bad_split_values_and_mappings_are_refused(tmp_path: Path) -> None:
    collection(tmp_path)
    data = json.loads((tmp_path / "items.json").read_text())
    data["features"][1]["properties"]["split"] = 3
    (tmp_path / "items.json").write_text(json.dumps(data))
    result = convert(tmp_path / "items.json", tmp_path / "s.zarr", *ASSETS)
    assert result.exit_code == 2
    assert "property split=3 is not a split name" in " ".join(result.output.split())
    result = convert(tmp_path / "items.json", tmp_path / "s.zarr", "--assets", "vv=VV,vh=VH")
    assert result.exit_code == 2 and "map exactly one asset to `label`" in result.output
