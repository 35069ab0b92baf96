"""CloudSEN12 reader: synthetic folder, the real-format fixture, the merge_clouds option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from floodlab.data.sources import get_reader
from floodlab.data.synth import write_synthetic
from floodlab.errors import DatasetNotFoundError

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
FIXTURE = REALDATA / "cloud_s2_fixture"


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cs") / "cloudsen12"
    return write_synthetic("cloudsen12", out, chips=8, size=32, seed=6)


def test_synthetic_splits_by_roi_and_clouds_present(synth_root: Path) -> None:
    reader = get_reader("cloudsen12", synth_root)
    refs = reader.list_chips()
    assert len(refs) == 8 and {r.split for r in refs} == {"train", "val", "test"}
    by_roi: dict[str, set[str | None]] = {}
    for r in refs:
        by_roi.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in by_roi.values())
    classes = set()
    for r in refs:
        chip = reader.read(r)
        classes |= set(np.unique(chip.arrays["cloud"]).tolist())
        assert chip.arrays["s2"].shape == (13, 32, 32)
    assert {0, 1, 2} <= classes


def test_missing_cloud_folder(tmp_path: Path) -> None:
    (tmp_path / "s2_toa").mkdir()
    with pytest.raises(DatasetNotFoundError, match="cloud"):
        get_reader("cloudsen12", tmp_path).list_chips()


@pytest.mark.skipif(not FIXTURE.is_dir(), reason=f"real-format fixture not present at {FIXTURE}")
def test_fixture_values_and_label_coding() -> None:
    merged = get_reader("cloudsen12", FIXTURE)
    (ref,) = merged.list_chips()
    assert ref.group == "ROI_00002" and ref.split == "train"
    chip = merged.read(ref)
    with rasterio.open(ref.files["s2"][0]) as src:
        s2 = src.read().astype(np.float32)
        assert chip.crs == "EPSG:32632" and chip.transform == tuple(src.transform)[:6]
    s2[s2 == 0] = np.nan
    np.testing.assert_array_equal(chip.arrays["s2"], s2)
    with rasterio.open(ref.files["cloud"][0]) as src:
        raw = src.read(1)
    np.testing.assert_array_equal(chip.arrays["cloud"], raw)
    np.testing.assert_array_equal(chip.arrays["label"], np.isin(raw, (1, 2)).astype(np.int8))
    thick_only = get_reader("cloudsen12", FIXTURE, merge_clouds=False).read(ref)
    np.testing.assert_array_equal(thick_only.arrays["label"], (raw == 1).astype(np.int8))
    np.testing.assert_array_equal(thick_only.arrays["cloud"], raw)
