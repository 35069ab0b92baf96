"""Real-world raster quirks: corrupt, all-nodata, NaN and -3.4e38 nodata, odd S1 scenes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from floodlab.data.geotiff import check_aligned, raster_info, read_raster
from floodlab.data.sources import get_reader
from floodlab.data.sources.common import read_label
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
EDGE = REALDATA / "edge_cases"
S1 = REALDATA / "s1_scenes"
pytestmark = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real sample data not present at {REALDATA}"
)


def test_corrupt_file_raises_data_error_naming_it(tmp_path: Path) -> None:
    path = EDGE / "corrupt.tif"
    with pytest.raises(DataError, match=r"corrupt\.tif"):
        read_raster(path)
    # Through a reader: a label file that opens but cannot be read is named.
    root = write_synthetic("sen1floods11", tmp_path / "s11", chips=3, size=32, seed=0)
    reader = get_reader("sen1floods11", root)
    ref = reader.list_chips()[0]
    shutil.copy(path, ref.files["label"][0])
    with pytest.raises(DataError, match="cannot be read") as err:
        reader.read(ref)
    assert ref.files["label"][0] in str(err.value)


def test_all_nodata_file_is_entirely_invalid() -> None:
    arr, info = read_raster(EDGE / "all-nodata.tif", as_float=True)
    assert info.dtype == "uint16" and info.nodata == 0 and arr.shape == (4, 2475, 71)
    assert np.isnan(arr).all()
    label, _ = read_label(EDGE / "all-nodata.tif")
    assert (label == -1).all()


def test_nan_nodata_is_kept_and_other_values_untouched() -> None:
    arr, info = read_raster(EDGE / "float_nan.tif", as_float=True)
    with rasterio.open(EDGE / "float_nan.tif") as src:
        raw = src.read()
    assert info.crs == "" and np.isnan(info.nodata)
    np.testing.assert_array_equal(arr, raw)
    assert np.isnan(arr).sum() == 1


def test_minus_3_4e38_nodata_with_non_epsg_crs() -> None:
    path = EDGE / "float_raster_with_nodata.tif"
    arr, info = read_raster(path, as_float=True)
    with rasterio.open(path) as src:
        raw, crs = src.read(), src.crs
        assert info.transform == tuple(src.transform)[:6]
    nodata = raw < -1e38
    assert nodata.any() and np.isnan(arr[nodata]).all()
    np.testing.assert_array_equal(arr[~nodata], raw[~nodata])
    # Not an EPSG code: the WKT is kept and round-trips.
    assert not info.crs.startswith("EPSG:") and "Lambert_Azimuthal_Equal_Area" in info.crs
    assert CRS.from_wkt(info.crs) == crs


def test_minus_99_nodata_single_polarisation_scene() -> None:
    path = S1 / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
    arr, info = read_raster(path, as_float=True)
    with rasterio.open(path) as src:
        raw = src.read()
    assert info.nodata == -99.0 and info.crs == "EPSG:32631" and info.res == (20.0, 20.0)
    assert arr.shape == (1, 217, 268)
    np.testing.assert_array_equal(np.isnan(arr), raw == -99.0)
    np.testing.assert_array_equal(arr[raw != -99.0], raw[raw != -99.0])


def test_non_square_pixels_and_separate_polarisation_files() -> None:
    scene = next((S1 / "SSL4EO-S12").rglob("VV.tif"))
    vv, vh = raster_info(scene), raster_info(scene.with_name("VH.tif"))
    check_aligned(vv, vh)  # the two polarisation files share one grid
    xres, yres = vv.res
    assert vv.crs == "EPSG:4326" and xres != pytest.approx(yres, rel=1e-3)
    arr, _ = read_raster(scene, as_float=True)
    with rasterio.open(scene) as src:
        np.testing.assert_array_equal(arr, src.read())
        assert vv.transform == tuple(src.transform)[:6]
