"""DeepFlood reader: synthetic tiles, numeric nodata, real per-polarisation S1 files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from floodlab.bands import AUX_BANDS
from floodlab.data.geotiff import raster_info, write_raster
from floodlab.data.sources import get_reader
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError, DatasetNotFoundError

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
BEN = REALDATA / "s1_scenes" / "BigEarthNet" / "BigEarthNet-S1"


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("df") / "deepflood"
    return write_synthetic("deepflood", out, chips=5, size=32, seed=4)


def test_synthetic_tiles_read_with_aux_and_nodata_mapped(synth_root: Path) -> None:
    reader = get_reader("deepflood", synth_root)
    refs = reader.list_chips()
    assert len(refs) == 5 and len({r.group for r in refs}) == 2  # 4 tiles per event
    assert all(r.split is None for r in refs)
    for ref in refs:
        chip = reader.read(ref)
        assert chip.arrays["s1"].shape == (2, 32, 32)
        assert chip.arrays["aux"].shape == (2, 32, 32) and chip.bands["aux"] == AUX_BANDS
        with rasterio.open(ref.files["s1"][0]) as src:
            raw = src.read(1)
            assert src.nodata == -9999.0
        # -9999 becomes NaN, every other value is kept.
        np.testing.assert_array_equal(np.isnan(chip.arrays["s1"][0]), raw == -9999.0)
        with rasterio.open(ref.files["label"][0]) as src:
            flood = src.read(1)
        np.testing.assert_array_equal(chip.arrays["label"] == -1, flood == 255)


def test_tile_without_vh_is_named(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "df"
    shutil.copytree(synth_root, root)
    tile = next(root.glob("*/*/S1_VH.tif"))
    tile.unlink()
    with pytest.raises(DataError, match=r"S1_VH\.tif"):
        get_reader("deepflood", root).list_chips()


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="floodlab synth deepflood"):
        get_reader("deepflood", tmp_path / "absent").list_chips()


@pytest.mark.skipif(not BEN.is_dir(), reason=f"real sample data not present at {BEN}")
def test_real_separate_polarisation_files(tmp_path: Path) -> None:
    vv = next(BEN.rglob("*_VV.tif"))
    vh = vv.with_name(vv.name.replace("_VV.tif", "_VH.tif"))
    tile = tmp_path / "event" / "tile_000"
    tile.mkdir(parents=True)
    shutil.copy(vv, tile / "S1_VV.tif")
    shutil.copy(vh, tile / "S1_VH.tif")
    info = raster_info(vv)
    write_raster(
        tile / "FLOOD.tif",
        np.zeros(info.shape, np.uint8),
        crs=info.crs,
        transform=info.transform,
        nodata=255,
    )
    reader = get_reader("deepflood", tmp_path)
    chip = reader.read(reader.list_chips()[0])
    with rasterio.open(vv) as a, rasterio.open(vh) as b:
        expect = np.stack([a.read(1), b.read(1)])
        assert chip.crs == "EPSG:32633" and chip.transform == tuple(a.transform)[:6]
    np.testing.assert_array_equal(chip.arrays["s1"], expect)
    assert "s2" not in chip.arrays and "aux" not in chip.arrays
