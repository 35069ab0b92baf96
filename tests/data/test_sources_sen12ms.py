"""SEN12MS reader on a synthetic tree, the real s1+lc patch p30 and the torchgeo layout fixture."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from floodlab.data.sources import get_reader
from floodlab.data.sources.sen12ms import igbp_water_label
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError, DatasetNotFoundError, UnitsError

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
REAL = REALDATA / "sen12ms"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real sample data not present at {REAL}")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("s12") / "sen12ms"
    return write_synthetic("sen12ms", out, chips=8, size=32, seed=2)


def test_synthetic_patches_pair_s1_s2_lc_with_water_label(synth_root: Path) -> None:
    reader = get_reader("sen12ms", synth_root)
    refs = reader.list_chips()
    assert len(refs) == 8
    assert {r.group.split("_")[0] for r in refs} == {"spring", "summer", "fall", "winter"}
    chip = reader.read(refs[0])
    assert chip.arrays["s1"].shape == (2, 32, 32)
    assert chip.arrays["s2"].shape == (13, 32, 32)
    assert chip.arrays["lc"].shape == (4, 32, 32)
    assert chip.crs.startswith("EPSG:32")  # UTM
    np.testing.assert_array_equal(chip.arrays["label"] == 1, chip.arrays["lc"][0] == 17)
    with rasterio.open(refs[0].files["s1"][0]) as src:
        assert src.profile["interleave"] == "pixel"


def test_season_filter(synth_root: Path) -> None:
    refs = get_reader("sen12ms", synth_root, seasons=("winter",)).list_chips()
    assert len(refs) == 2 and all(r.id.startswith("ROIs2017_winter") for r in refs)
    assert get_reader("sen12ms", synth_root, season="winter").list_chips() == refs


def test_archive_folder_convention(synth_root: Path, tmp_path: Path) -> None:
    # ROIs1158_spring_s1/s1_1/... as the release archives extract.
    alt = tmp_path / "alt"
    for mod_dir in synth_root.glob("ROIs*/*_*"):
        season_dir = mod_dir.parent.name
        mod = mod_dir.name.split("_")[0]
        shutil.copytree(mod_dir, alt / f"{season_dir}_{mod}" / mod_dir.name)
    a = get_reader("sen12ms", synth_root).list_chips()
    b = get_reader("sen12ms", alt).list_chips()
    assert [r.id for r in a] == [r.id for r in b]
    assert all(set(r.files) == {"s1", "s2", "lc"} for r in b)


def test_empty_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="floodlab synth sen12ms"):
        get_reader("sen12ms", tmp_path).list_chips()


def test_igbp_water_coding() -> None:
    lc = np.array([[17, 1, 16], [0, 18, 17]], dtype=np.uint16)
    np.testing.assert_array_equal(igbp_water_label(lc), [[1, 0, 0], [-1, -1, 1]])


@needs_real
def test_real_patch_without_s2() -> None:
    reader = get_reader("sen12ms", REAL / "real")
    (ref,) = reader.list_chips()
    assert ref.id == "ROIs1158_spring_1_p30" and ref.group == "spring_1"
    assert set(ref.files) == {"s1", "lc"}
    chip = reader.read(ref)
    with rasterio.open(ref.files["s1"][0]) as src:
        np.testing.assert_array_equal(chip.arrays["s1"], src.read())  # pixel-interleaved
        assert chip.crs == "EPSG:32737" and chip.transform == tuple(src.transform)[:6]
    with rasterio.open(ref.files["lc"][0]) as src:
        lc = src.read()
    assert chip.arrays["lc"].dtype == np.uint8
    np.testing.assert_array_equal(chip.arrays["lc"], lc)
    assert "s2" not in chip.arrays
    with pytest.raises(DataError, match="no s2 file"):
        get_reader("sen12ms", REAL / "real", require=("s2",)).list_chips()


@needs_real
def test_torchgeo_layout_fixture_with_s2_and_lists() -> None:
    # The fixture's s1 files hold random values 19..65526 (float32): not dB. They are
    # refused as they are and read once declared as amplitude (converted to dB).
    with pytest.raises(UnitsError, match=r"s1_1_p1\.tif band 1 \(VV\).*--units"):
        reader = get_reader("sen12ms", REAL / "layout_fixture")
        reader.read(reader.list_chips()[0])
    reader = get_reader("sen12ms", REAL / "layout_fixture", units="amplitude")
    refs = reader.list_chips()
    assert [r.id for r in refs] == ["ROIs1158_spring_1_p1", "ROIs1158_spring_1_p2"]
    assert all(r.split == "train" for r in refs)  # listed in train_list.txt first
    chip = reader.read(refs[0])
    with rasterio.open(refs[0].files["s1"][0]) as src:
        amplitude = src.read().astype(np.float64)
    np.testing.assert_allclose(chip.arrays["s1"], 20 * np.log10(amplitude), rtol=1e-6)
    with rasterio.open(refs[0].files["s2"][0]) as src:
        s2 = src.read().astype(np.float32)
    s2[s2 == 0] = np.nan
    np.testing.assert_array_equal(chip.arrays["s2"], s2)
    assert chip.arrays["lc"].dtype == np.uint16
