"""Sen1Floods11 reader on a synthetic v1.1 tree and on the real chip Spain_7370579."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from floodlab.bands import S1_BANDS, S2_BANDS
from floodlab.data.geotiff import write_raster
from floodlab.data.sources import get_reader
from floodlab.data.sources.sen1floods11 import read_split_file, read_splits
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError, DatasetNotFoundError

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
REAL = REALDATA / "sen1floods11"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real sample data not present at {REAL}")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("s11") / "sen1floods11"
    return write_synthetic("sen1floods11", out, chips=12, size=48, seed=5, weak_chips=4)


def test_synthetic_tree_lists_hand_chips_with_official_splits(synth_root: Path) -> None:
    refs = get_reader("sen1floods11", synth_root).list_chips()
    assert len(refs) == 12
    assert [r.id for r in refs] == sorted(r.id for r in refs)
    splits = {r.split for r in refs}
    assert splits == {"train", "val", "test", "bolivia"}
    # Splits never divide an event, and Bolivia is exactly the hold-out.
    by_group: dict[str, set[str | None]] = {}
    for r in refs:
        by_group.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in by_group.values())
    assert by_group["Bolivia"] == {"bolivia"}


def test_reader_accepts_v11_folder_or_its_parent(synth_root: Path) -> None:
    a = get_reader("sen1floods11", synth_root).list_chips()
    b = get_reader("sen1floods11", synth_root.parent).list_chips()
    assert a == b


def test_hand_chip_arrays_follow_the_conventions(synth_root: Path) -> None:
    reader = get_reader("sen1floods11", synth_root)
    ref = reader.list_chips()[0]
    chip = reader.read(ref)
    assert chip.arrays["s1"].shape == (2, 48, 48) and chip.arrays["s1"].dtype == np.float32
    assert chip.arrays["s2"].shape == (13, 48, 48) and chip.arrays["s2"].dtype == np.float32
    assert chip.arrays["label"].dtype == np.int8
    assert set(np.unique(chip.arrays["label"])) <= {-1, 0, 1}
    assert chip.bands == {"s1": S1_BANDS, "s2": S2_BANDS}
    assert chip.crs == "EPSG:4326" and chip.meta["label_source"] == "hand"
    with rasterio.open(ref.files["s1"][0]) as src:
        assert chip.transform == tuple(src.transform)[:6]


def test_weak_chips_have_otsu_labels_and_no_split(synth_root: Path) -> None:
    reader = get_reader("sen1floods11", synth_root, labels=("hand", "weak"))
    refs = reader.list_chips()
    weak = [r for r in refs if "label_weak" in r.files]
    assert len(refs) == 16 and len(weak) == 4
    assert all(r.split is None for r in weak)
    chip = reader.read(weak[0])
    assert "s2" not in chip.arrays and "label" not in chip.arrays
    assert chip.meta["label_source"] == "weak"
    lab = chip.arrays["label_weak"]
    assert lab.dtype == np.int8 and set(np.unique(lab)) <= {-1, 0, 1}
    # Weak labels are exactly nodata where the SAR is nodata.
    assert np.array_equal(lab == -1, np.isnan(chip.arrays["s1"][0]))


def test_missing_tree_names_the_folder_and_the_synth_command(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        get_reader("sen1floods11", tmp_path / "nowhere").list_chips()
    msg = str(err.value)
    assert "data/flood_events" in msg and "floodlab synth sen1floods11 --out DIR" in msg


def test_missing_label_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "data/flood_events/HandLabeled/S1Hand").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="LabelHand"):
        get_reader("sen1floods11", tmp_path).list_chips()


def test_mismatched_label_shape_names_both_files(synth_root: Path, tmp_path: Path) -> None:
    reader = get_reader("sen1floods11", synth_root)
    ref = reader.list_chips()[0]
    bad = tmp_path / "label.tif"
    write_raster(
        bad, np.zeros((40, 48), np.int16), crs="EPSG:4326", transform=(1e-4, 0, 5, 0, -1e-4, 40)
    )
    files = {**ref.files, "label": (str(bad),)}
    with pytest.raises(DataError) as err:
        reader.read(type(ref)(ref.id, ref.group, ref.split, files))
    assert ref.files["s1"][0] in str(err.value) and str(bad) in str(err.value)


def test_mismatched_crs_names_both_files(synth_root: Path, tmp_path: Path) -> None:
    reader = get_reader("sen1floods11", synth_root)
    ref = reader.list_chips()[0]
    with rasterio.open(ref.files["label"][0]) as src:
        lab, tf = src.read(1), tuple(src.transform)[:6]
    bad = tmp_path / "label_utm.tif"
    write_raster(bad, lab, crs="EPSG:32630", transform=tf)
    files = {**ref.files, "label": (str(bad),)}
    with pytest.raises(DataError, match="CRSs differ") as err:
        reader.read(type(ref)(ref.id, ref.group, ref.split, files))
    assert str(bad) in str(err.value)


def test_unknown_option_is_rejected(synth_root: Path) -> None:
    with pytest.raises(ValueError, match="label"):
        get_reader("sen1floods11", synth_root, label=("hand",))


@needs_real
def test_real_chip_matches_rasterio_and_the_published_counts() -> None:
    reader = get_reader("sen1floods11", REAL, splits_dir=REAL / "split_lists")
    (ref,) = reader.list_chips()
    assert ref.id == "Spain_7370579" and ref.group == "Spain"
    assert ref.split == "test"  # listed in the official test split
    chip = reader.read(ref)
    lab = chip.arrays["label"]
    assert [(lab == v).sum() for v in (-1, 0, 1)] == [99, 192_010, 70_035]
    with rasterio.open(ref.files["s1"][0]) as src:
        s1 = src.read()
        assert chip.crs == "EPSG:4326" and chip.transform == tuple(src.transform)[:6]
    np.testing.assert_array_equal(chip.arrays["s1"], s1)  # NaN nodata kept as NaN
    with rasterio.open(ref.files["s2"][0]) as src:
        assert src.dtypes[0] == "int16"  # documented uint16, really int16
        s2 = src.read().astype(np.float32)
    s2[s2 == 0] = np.nan
    np.testing.assert_array_equal(chip.arrays["s2"], s2)


@needs_real
def test_both_split_file_formats() -> None:
    lists = REAL / "split_lists"
    csv_ids = read_split_file(lists / "flood_test_data_subset.csv")
    assert csv_ids[0] == "Ghana_53713" and len(csv_ids) == 9
    assert "Sri-Lanka_534068" in csv_ids
    txt_ids = read_split_file(lists / "flood_test_data.txt")
    assert "Spain_7370579" in txt_ids
    splits = read_splits(lists)
    assert splits["Spain_7370579"] == "test"
    assert {"train", "val", "test"} <= set(splits.values())  # valid -> val
