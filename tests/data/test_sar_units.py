"""SAR units: values that cannot be dB are refused with the fix; declared units are converted
to dB on conversion; the real dB files pass unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner, Result

from floodlab.cli import main
from floodlab.data.geotiff import write_raster
from floodlab.data.load.store import open_store
from floodlab.data.units import SAR_UNITS, SarUnits, check_sar, sar_to_db, sar_units
from floodlab.errors import UnitsError

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
needs_real = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real sample data not present at {REALDATA}"
)
SIZE = 24


def db_tile(seed: int) -> np.ndarray:
    """(2, SIZE, SIZE) float32 VV/VH in dB, like real land and water."""
    rng = np.random.default_rng(seed)
    vv = rng.normal(-12.0, 4.0, (SIZE, SIZE))
    return np.stack([vv, vv - 7.0 + rng.normal(0, 1, (SIZE, SIZE))]).astype(np.float32)


def write_deepflood(root: Path, encode, dtype: str, nodata: float | None = None) -> list[Path]:
    """A DeepFlood tree of 3 tiles whose S1 files hold `encode(dB)` as `dtype`.

    Returns the tile folders; each also has `db.npy`, the dB values it was made from.
    """
    tiles = []
    for k, (event, tile) in enumerate([("EventA", "t1"), ("EventA", "t2"), ("EventB", "t1")]):
        folder = root / event / tile
        db = db_tile(k)
        tf = (10.0, 0.0, 500000.0 + 1000 * k, 0.0, -10.0, 4100000.0)
        for name, band in (("S1_VV.tif", db[0]), ("S1_VH.tif", db[1])):
            write_raster(folder / name, encode(band).astype(dtype), crs="EPSG:32631",
                         transform=tf, nodata=nodata)  # fmt: skip
        flood = (db[0] < -14).astype(np.uint8)
        write_raster(folder / "FLOOD.tif", flood, crs="EPSG:32631", transform=tf)
        np.save(folder / "db.npy", db)
        tiles.append(folder)
    return tiles


def convert_cli(src: Path, out: Path, *extra: str) -> Result:
    args = ["convert", "deepflood", str(src), "--out", str(out), "--workers", "1", *extra]
    return CliRunner().invoke(main, args)


def stored_vv_vh(out: Path) -> dict[str, np.ndarray]:
    """Tile id -> the (2, H, W) VV/VH the store holds."""
    store = open_store(out)
    return {str(cid): store.read_bands(i, ["VV", "VH"]) for i, cid in enumerate(store.ids)}


# --- the rule ------------------------------------------------------------------------


def test_integer_rasters_are_not_db() -> None:
    counts = np.arange(200, dtype=np.float32)
    for dtype in ("uint8", "uint16", "int16"):
        with pytest.raises(UnitsError, match=rf"a\.tif band 1 \(VV\): holds {dtype}.*--units"):
            check_sar(counts, dtype=dtype, units=None, where="a.tif band 1 (VV)")


@pytest.mark.parametrize(
    ("values", "why"),
    [
        (10 ** (db_tile(0) / 10), "no negative values"),  # linear power
        (10 ** (db_tile(0) / 20), "no negative values"),  # amplitude
        (100 * db_tile(0), "outside the -100..60 dB"),  # dB x 100
    ],
)
def test_float_values_that_cannot_be_db(values: np.ndarray, why: str) -> None:
    with pytest.raises(UnitsError, match=why):
        check_sar(values, dtype="float32", units=None, where="a.tif band 1 (VV)")


def test_db_passes_and_declared_units_are_checked_too() -> None:
    db = db_tile(0)
    check_sar(db, dtype="float32", units=None, where="a.tif")
    with pytest.raises(UnitsError, match=r"declared --units linear.*looks like dB already"):
        check_sar(db, dtype="float32", units="linear", where="a.tif")
    check_sar(10 ** (db / 10), dtype="float32", units="db", where="a.tif")  # trusted
    with pytest.raises(UnitsError, match=r"unknown SAR units; choose one of \['amplitude'"):
        sar_units("decibel")


def test_conversions_to_db_and_non_positive_values_become_nodata() -> None:
    x = np.array([[[0.1, 1.0, 0.0, -0.5, np.nan]]], dtype=np.float32)
    lin = sar_to_db(x, ["VV"], dtype="float32", units="linear", where="a.tif")
    amp = sar_to_db(x, ["VV"], dtype="float32", units="amplitude", where="a.tif")
    np.testing.assert_allclose(lin[0, 0, :2], [-10.0, 0.0])
    np.testing.assert_allclose(amp[0, 0, :2], [-20.0, 0.0])
    assert np.isnan(lin[0, 0, 2:]).all() and np.isnan(amp[0, 0, 2:]).all()
    assert lin.dtype == np.float32


def test_the_vocabulary_is_extensible(monkeypatch: pytest.MonkeyPatch) -> None:
    unit = SarUnits("scaled_test", "test", "x / 10", lambda v: v / 10, check=None, stored="x")
    monkeypatch.setitem(SAR_UNITS, unit.name, unit)
    assert sar_units("scaled_test") is unit
    out = sar_to_db(np.ones((1, 2, 2)), ["VV"], dtype="uint8", units="scaled_test", where="a")
    np.testing.assert_allclose(out, 0.1)


@needs_real
@pytest.mark.parametrize(
    "path",
    [
        "sen1floods11/v1.1/data/flood_events/HandLabeled/S1Hand/Spain_7370579_S1Hand.tif",
        "sen12ms/real/ROIs1158_spring/s1_1/ROIs1158_spring_s1_1_p30.tif",
        "s1_scenes/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif",
    ],
)
def test_real_db_files_pass(path: str) -> None:
    with rasterio.open(REALDATA / path) as ds:
        values = ds.read(masked=True).astype(np.float32).filled(np.nan)
        for band in values:
            check_sar(band, dtype=ds.dtypes[0], units=None, where=path)


# --- floodlab convert ----------------------------------------------------------------


def test_uint8_sar_is_refused_with_the_fix_even_with_skip_bad(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_deepflood(raw, lambda db: np.clip((db + 30) * 8, 0, 255), "uint8")
    out = tmp_path / "s.zarr"
    for extra in ((), ("--skip-bad",)):
        res = convert_cli(raw, out, *extra)
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output
        assert "S1_VV.tif band 1 (VV): holds uint8 values" in res.output
        assert "--units linear" in res.output and "--units amplitude" in res.output
        assert not out.exists()


@pytest.mark.parametrize(
    ("units", "encode", "formula"),
    [
        ("linear", lambda db: 10 ** (db / 10), "10*log10(x)"),
        ("amplitude", lambda db: 10 ** (db / 20), "20*log10(x)"),
    ],
)
def test_declared_units_are_converted_to_db_and_recorded(
    tmp_path: Path, units: str, encode, formula: str
) -> None:
    raw = tmp_path / "raw"
    tiles = write_deepflood(raw, encode, "float32", nodata=0.0)
    out = tmp_path / "s.zarr"
    refused = convert_cli(raw, out)
    assert refused.exit_code == 2 and "S1_V" in refused.output
    assert "looks like linear power or amplitude" in refused.output
    assert "--units" in refused.output and not out.exists()
    # A zero (the files' nodata) stays nodata after conversion.
    with rasterio.open(tiles[0] / "S1_VV.tif", "r+") as ds:
        vv = ds.read(1)
        vv[0, :3] = 0.0
        ds.write(vv, 1)
    res = convert_cli(raw, out, "--units", units)
    assert res.exit_code == 0, res.output
    assert f"SAR input in {units} converted to dB: {formula}" in res.output
    stored = stored_vv_vh(out)
    for tile in tiles:
        db = np.load(tile / "db.npy")
        got = stored[f"{tile.parent.name}_{tile.name}"]
        if tile == tiles[0]:
            assert np.isnan(got[0, 0, :3]).all()
            got, db = got[:, 1:], db[:, 1:]
        np.testing.assert_allclose(got, db, atol=1e-4)  # back to the dB they came from
    store = open_store(out)
    assert store.attrs["provenance"]["sar_units"] == {
        "input": units,
        "declared": True,
        "conversion": f"{formula}; x <= 0 -> nodata",
        "stored": "dB",
    }
    assert store.attrs["provenance"]["options"]["reader_options"]["units"] == units
    shown = CliRunner().invoke(main, ["inspect", str(out)])
    assert f"SAR units  {units} (declared), converted to dB: {formula}" in shown.output


def test_db_data_with_wrong_units_or_a_non_sar_source_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_deepflood(raw, lambda db: db, "float32")
    res = convert_cli(raw, tmp_path / "a.zarr", "--units", "linear")
    assert res.exit_code == 2 and "looks like dB already" in res.output
    res = convert_cli(raw, tmp_path / "b.zarr", "--units", "decibel")
    assert res.exit_code == 2 and "unknown SAR units" in res.output
    res = CliRunner().invoke(
        main,
        ["convert", "cloudsen12", str(raw), "--out", str(tmp_path / "c.zarr"), "--units", "linear"],
    )
    assert res.exit_code == 2 and "cloudsen12 carries no SAR bands" in res.output
    ok = convert_cli(raw, tmp_path / "d.zarr")
    assert ok.exit_code == 0, ok.output
    units = open_store(tmp_path / "d.zarr").attrs["provenance"]["sar_units"]
    assert units == {"input": "db", "declared": False, "conversion": "none", "stored": "dB"}


@needs_real
def test_real_sen1floods11_db_chip_converts_unchanged(tmp_path: Path) -> None:
    root = REALDATA / "sen1floods11"
    out = tmp_path / "s.zarr"
    res = CliRunner().invoke(
        main,
        ["convert", "sen1floods11", str(root / "v1.1"), "--out", str(out),
         "--option", f"splits_dir={root / 'split_lists'}"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    s1 = root / "v1.1/data/flood_events/HandLabeled/S1Hand/Spain_7370579_S1Hand.tif"
    with rasterio.open(s1) as ds:
        np.testing.assert_array_equal(open_store(out).read_bands(0, ["VV", "VH"]), ds.read())
    assert open_store(out).attrs["provenance"]["sar_units"]["input"] == "db"
