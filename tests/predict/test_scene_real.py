"""Scene prediction on real Sentinel-1 files (odd sizes, CRSs, nodata) and a corrupt TIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from floodlab.errors import DataError
from floodlab.predict.scene import OUTPUT_NODATA, predict_scene

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
S1 = REALDATA / "s1_scenes"
needs_realdata = pytest.mark.skipif(
    not S1.is_dir(), reason=f"real sample data not present at {REALDATA}"
)


def dark_is_water(x: np.ndarray) -> dict[str, np.ndarray]:
    """A pixelwise 'model' on normalised dB: darker VV -> higher water probability."""
    return {"prob": 1.0 / (1.0 + np.exp(np.clip(4.0 * x[:, :1], -50.0, 50.0)))}


def normalize_db(x: np.ndarray) -> np.ndarray:
    """Centre dB values at -15 dB, 5 dB per unit; nodata -> 0."""
    return np.nan_to_num((x + 15.0) / 5.0).astype(np.float32)


def check_same_grid(src: Path, out: Path) -> np.ndarray:
    """Assert `out` has `src`'s CRS, transform and shape; return its bands."""
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert b.crs == a.crs
        assert b.transform == a.transform
        assert (b.height, b.width) == (a.height, a.width)
        return b.read()


@needs_realdata
def test_separate_vv_vh_files_with_non_square_degree_pixels(tmp_path: Path) -> None:
    # SSL4EO-S12: VV.tif / VH.tif without band descriptions, EPSG:4326, 264 x 264,
    # pixels ~1.02e-4 x 8.8e-5 degrees (not square).
    folder = next((S1 / "SSL4EO-S12").rglob("VV.tif")).parent
    out = tmp_path / "flood.tif"
    result = predict_scene(
        dark_is_water,
        [folder / "VV.tif", folder / "VH.tif"],
        out,
        bands=["VV", "RATIO", "MAGNITUDE"],
        normalize=normalize_db,
        window=128,
        overlap=32,
    )
    bands = check_same_grid(folder / "VV.tif", out)
    with rasterio.open(out) as ds:
        assert ds.res[0] != ds.res[1]
    assert result.valid_pixels == 264 * 264
    assert bands[0].min() >= 0.0 and bands[0].max() <= 1.0


@needs_realdata
def test_scene_smaller_than_a_window_in_utm(tmp_path: Path) -> None:
    # BigEarthNet-S1: 120 x 120 px, EPSG:32633, `<name>_VV.tif` / `<name>_VH.tif`.
    vv = next((S1 / "BigEarthNet").rglob("*_VV.tif"))
    vh = vv.with_name(vv.name.replace("_VV.tif", "_VH.tif"))
    out = tmp_path / "flood.tif"
    predict_scene(dark_is_water, [vv, vh], out, bands=["VV", "VH"], normalize=normalize_db)
    bands = check_same_grid(vv, out)
    with rasterio.open(vv) as ds:
        expected = dark_is_water(normalize_db(ds.read().astype(np.float32))[None])["prob"][0, 0]
    np.testing.assert_allclose(bands[0], expected, atol=1e-5)  # pixelwise: blending is exact


@needs_realdata
def test_single_vv_scene_with_minus_99_nodata(tmp_path: Path) -> None:
    # pyroSAR: one VV band in dB, 268 x 217, nodata -99, EPSG:32631, 20 m.
    src = next(S1.glob("*_VV_*.tif"))
    with rasterio.open(src) as ds:
        raw = ds.read(1)
    raw[:5, :7] = -99.0  # make sure some nodata pixels exist in a copy of the real file
    copy = tmp_path / src.name
    with rasterio.open(src) as ds:
        profile = ds.profile
    with rasterio.open(copy, "w", **profile) as dst:
        dst.write(raw, 1)
    out = tmp_path / "flood.tif"
    predict_scene(
        dark_is_water, copy, out, bands=["VV"], normalize=normalize_db, window=64, overlap=16
    )
    bands = check_same_grid(src, out)
    nodata = raw == -99.0
    assert (bands[:, nodata] == OUTPUT_NODATA).all()
    assert (bands[:, ~nodata] != OUTPUT_NODATA).all()


@needs_realdata
def test_corrupt_tiff_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    corrupt = REALDATA / "edge_cases" / "corrupt.tif"  # opens, but its pixels fail to read
    with pytest.raises(DataError, match=r"corrupt\.tif.*corrupt"):
        predict_scene(
            dark_is_water,
            corrupt,
            tmp_path / "flood.tif",
            bands=["VV", "VH", "B2"],
            input_bands=["VV", "VH", "B2"],
            window=256,
            overlap=64,
        )
    assert list(tmp_path.iterdir()) == []
