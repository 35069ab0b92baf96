"""SAR-KD numpy-folder reader: split from the folder, band subsets, no georeferencing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from floodlab.data.geotiff import IDENTITY
from floodlab.data.sources import get_reader
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError, DatasetNotFoundError


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kd") / "sarkd"
    return write_synthetic("sarkd", out, chips=6, size=32, seed=7)


def test_patches_read_with_split_from_folder(synth_root: Path) -> None:
    reader = get_reader("sarkd", synth_root)
    refs = reader.list_chips()
    assert len(refs) == 6 and {r.split for r in refs} == {"train", "val"}
    chip = reader.read(refs[0])
    assert chip.crs == "" and chip.transform == IDENTITY
    assert chip.bands == {"s1": ("VV", "VH"), "s2": ("B2", "B3", "B4"), "aux": ("NDVI", "NDWI")}
    vv = np.load(refs[0].files["s1"][0])
    np.testing.assert_array_equal(chip.arrays["s1"][0], vv)
    raw = np.load(refs[0].files["label"][0])
    np.testing.assert_array_equal(chip.arrays["label"] == -1, raw == 255)


def test_numeric_nodata_option(tmp_path: Path) -> None:
    img, lab = tmp_path / "train" / "img", tmp_path / "train" / "lab"
    img.mkdir(parents=True)
    lab.mkdir(parents=True)
    vv = np.array([[-10.0, -9999.0], [-20.0, -15.0]], np.float32)
    np.save(img / "p_1_VV.npy", vv)
    np.save(img / "p_1_VH.npy", vv - 7)
    np.save(lab / "p_1.npy", np.array([[0, 1], [1, 2]], np.uint8))
    reader = get_reader("sarkd", tmp_path, nodata=-9999)
    (ref,) = reader.list_chips()
    assert ref.id == "p_1" and ref.group == "p" and "s2" not in ref.files
    chip = reader.read(ref)
    assert np.isnan(chip.arrays["s1"][0, 0, 1]) and chip.arrays["s1"][0, 1, 0] == -20.0
    np.testing.assert_array_equal(chip.arrays["label"], [[0, 1], [1, -1]])


def test_missing_band_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="floodlab synth sarkd"):
        get_reader("sarkd", tmp_path).list_chips()
    img = tmp_path / "val" / "img"
    img.mkdir(parents=True)
    np.save(img / "x_VV.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(DataError, match=r"x_VH\.npy"):
        get_reader("sarkd", tmp_path).list_chips()
