"""Every raw layout converts: synthetic trees of each dataset and the real sample files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from floodlab.data.convert.pipeline import convert
from floodlab.data.load.store import open_store
from floodlab.data.sources import get_reader
from floodlab.data.synth import write_synthetic

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
needs_real = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real sample data not present at {REALDATA}"
)


def _assert_store_equals_reader(store_path: Path, reader) -> None:
    """Every chip's arrays in the store equal what the reader returns (physical units)."""
    store = open_store(store_path)
    refs = reader.list_chips()
    assert list(store.ids) == [r.id for r in refs]
    for i, ref in enumerate(refs):
        chip = reader.read(ref)
        for mod, arr in chip.arrays.items():
            if mod in ("s1", "s2", "aux"):
                got = store.read_bands(i, list(chip.bands[mod]))
                want = arr.astype(np.float32)
                if mod == "s2":
                    want = np.where(np.isfinite(want), np.rint(want), np.nan)
                np.testing.assert_array_equal(got, want, err_msg=f"{ref.id} {mod}")
            else:
                got = store.read_raw(i, [mod])[mod]
                np.testing.assert_array_equal(got, arr.astype(got.dtype), err_msg=f"{ref.id} {mod}")
        assert store.crs(i) == chip.crs
        assert store.transform(i) == pytest.approx(chip.transform)


@pytest.mark.parametrize("dataset", ["sen12ms", "deepflood", "cloudsen12", "sarkd"])
def test_synthetic_layout_converts_losslessly(tmp_path: Path, dataset: str) -> None:
    root = write_synthetic(dataset, tmp_path / "raw", chips=5, size=32, seed=1)
    out = convert(dataset, root, tmp_path / "s.zarr", workers=1)
    reader = get_reader(dataset, root)
    _assert_store_equals_reader(out, reader)
    store = open_store(out)
    assert store.attrs["stats"], "training-split statistics are written"
    assert set(store.splits) <= {"train", "val", "test"}
    if dataset == "sarkd":  # the numpy bands themselves, not only the reader's view
        ref = reader.list_chips()[0]
        vv = np.load(next(f for f in ref.files["s1"] if f.endswith("_VV.npy")))
        np.testing.assert_array_equal(store.read_bands(0, ["VV"])[0], vv.astype(np.float32))
        assert "NDVI" in store.available_bands()
    if dataset == "cloudsen12":
        assert set(np.unique(store.read_raw(0, ["cloud"])["cloud"])) <= {0, 1, 2, 3}


def test_sen1floods11_hand_and_weak_in_one_store(tiny_s1f11_store: Path) -> None:
    store = open_store(tiny_s1f11_store)
    assert store.attrs["label_source_counts"] == {"weak": 12, "hand": 24}
    weak = np.flatnonzero(store.label_sources == "weak")
    assert not store.present["s2"][weak].any() and store.present["label_weak"][weak].all()
    # The synthetic official splits are grouped by event; weak chips join their event's
    # split, so no event spans two splits and Bolivia stays the hold-out.
    for group in set(store.groups):
        assert len(set(store.splits[store.groups == group])) == 1, group
    assert set(store.splits[store.groups == "Bolivia"]) == {"bolivia"}


@needs_real
def test_real_sen1floods11_chip(tmp_path: Path) -> None:
    root = REALDATA / "sen1floods11" / "v1.1"
    splits = REALDATA / "sen1floods11" / "split_lists"
    out = convert(
        "sen1floods11",
        root,
        tmp_path / "s.zarr",
        derived=["NDVI", "RATIO"],
        reader_options={"splits_dir": str(splits)},
    )
    store = open_store(out)
    assert list(store.ids) == ["Spain_7370579"] and store.splits[0] == "test"
    assert store.attrs["stats_split"] == "all"  # no training chip: statistics over all
    hand = root / "data/flood_events/HandLabeled"
    with rasterio.open(hand / "S1Hand/Spain_7370579_S1Hand.tif") as f:
        s1 = f.read()
        assert store.transform(0) == pytest.approx(tuple(f.transform)[:6])
        assert store.crs(0) == "EPSG:4326"
    np.testing.assert_array_equal(store.read_bands(0, ["VV", "VH"]), s1)
    with rasterio.open(hand / "S2Hand/Spain_7370579_S2Hand.tif") as f:
        s2 = f.read().astype(np.float32)
    s2[s2 == 0] = np.nan
    np.testing.assert_array_equal(store.read_bands(0, list(store.bands("s2"))), s2)
    label = store.read_raw(0, ["label"])["label"]
    assert [(label == k).sum() for k in (-1, 0, 1)] == [99, 192010, 70035]
    assert store.attrs["class_balance"]["label"]["test"]["counts"] == {
        "-1": 99,
        "0": 192010,
        "1": 70035,
    }
    valid = store.read_raw(0, ["valid"])["valid"]
    assert np.array_equal(valid, (label >= 0) & np.isfinite(s1).all(axis=0))


@needs_real
def test_real_sen12ms_patch_with_uint8_land_cover(tmp_path: Path) -> None:
    root = REALDATA / "sen12ms" / "real"
    out = convert("sen12ms", root, tmp_path / "s.zarr", workers=1)
    store = open_store(out)
    assert len(store) == 1 and not store.present.get("s2", np.zeros(1, bool)).any()
    s1_file = next((root / "ROIs1158_spring" / "s1_1").glob("*.tif"))
    lc_file = next((root / "ROIs1158_spring" / "lc_1").glob("*.tif"))
    with rasterio.open(s1_file) as f:
        np.testing.assert_array_equal(store.read_bands(0, ["VV", "VH"]), f.read())
        assert store.crs(0) == "EPSG:32737"
        assert store.transform(0) == pytest.approx(tuple(f.transform)[:6])
    with rasterio.open(lc_file) as f:
        np.testing.assert_array_equal(store.read_raw(0, ["lc"])["lc"], f.read())
    _assert_store_equals_reader(out, get_reader("sen12ms", root))


@needs_real
def test_real_cloud_fixture(tmp_path: Path) -> None:
    root = REALDATA / "cloud_s2_fixture"
    out = convert("cloudsen12", root, tmp_path / "s.zarr", derived=["NDVI"], workers=1)
    _assert_store_equals_reader(out, get_reader("cloudsen12", root))
    store = open_store(out)
    name = next((root / "cloud").glob("*.tif"))
    with rasterio.open(name) as f:
        cloud = f.read(1)
    i = list(store.ids).index(next(iter(store.ids)))
    np.testing.assert_array_equal(store.read_raw(i, ["cloud"])["cloud"], cloud)
    label = store.read_raw(i, ["label"])["label"]
    assert np.array_equal(label == 1, (cloud == 1) | (cloud == 2))
    assert "NDVI" in store.attrs["derived"] and store.has_stats("B4")
