"""`floodlab predict --units`: SAR scenes that cannot be dB are refused with the fix, declared
units are converted to dB before the model sees them, real dB scenes are read unchanged."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner, Result

from floodlab.cli import main
from floodlab.predict.scene_io import SceneInputs

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
S1 = REALDATA / "s1_scenes"
needs_realdata = pytest.mark.skipif(
    not S1.is_dir(), reason=f"real sample data not present at {REALDATA}"
)
H, W = 40, 56


def db_scene() -> np.ndarray:
    """(2, H, W) VV/VH in dB."""
    rng = np.random.default_rng(4)
    vv = rng.normal(-12.0, 4.0, (H, W))
    return np.stack([vv, vv - 7.0]).astype(np.float32)


def write_scene(path: Path, data: np.ndarray, nodata: float | None = None) -> Path:
    profile = dict(driver="GTiff", width=W, height=H, count=2, dtype=data.dtype.name,
                   crs="EPSG:32631", transform=Affine(10, 0, 5e5, 0, -10, 4.1e6), nodata=nodata)  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        ds.set_band_description(1, "VV")
        ds.set_band_description(2, "VH")
    return path


def prob_of_db(db: np.ndarray) -> np.ndarray:
    """The stand-in model's output for dB input: a pixelwise linear map into (0, 1)."""
    return np.clip((db + 60.0) / 80.0, 0.0, 1.0)


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """`floodlab predict` with a pixelwise model on physical dB instead of a trained run."""
    import floodlab.predict.restore
    from floodlab.predict.predictor import RunPredictor

    def predict_fn(batch: np.ndarray) -> dict[str, np.ndarray]:
        return {"prob": prob_of_db(batch[:, :1])}

    model = SimpleNamespace(
        predict_fn=predict_fn,
        normalize=lambda x: np.nan_to_num(x).astype(np.float32),
        bands=["VV", "VH"],
        write_rgb=False,
    )
    monkeypatch.setattr(floodlab.predict.restore, "load_trained", lambda *a, **k: object())
    monkeypatch.setattr(RunPredictor, "from_trained", classmethod(lambda cls, *a, **k: model))


def predict_cli(scene: Path, out: Path, *extra: str) -> Result:
    args = ["predict", "some/run", str(scene), "-o", str(out), "--window", "32", "--overlap", "8"]
    return CliRunner().invoke(main, [*args, *extra])


@pytest.mark.usefixtures("fake_run")
def test_uint8_scene_is_refused_without_units(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "u8.tif", np.clip((db_scene() + 30) * 8, 0, 255).astype("u1"))
    out = tmp_path / "flood.tif"
    res = predict_cli(scene, out)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert f"{scene} band 1 (VV): holds uint8 values" in res.output
    assert "--units linear" in res.output and "--units amplitude" in res.output
    assert not out.exists()


@pytest.mark.usefixtures("fake_run")
@pytest.mark.parametrize(
    ("units", "encode", "tag"),
    [
        ("linear", lambda db: 10 ** (db / 10), "linear (10*log10(x); x <= 0 -> nodata)"),
        ("amplitude", lambda db: 10 ** (db / 20), "amplitude (20*log10(x); x <= 0 -> nodata)"),
    ],
)
def test_declared_units_are_converted_before_the_model(
    tmp_path: Path, units: str, encode, tag: str
) -> None:
    db = db_scene()
    raw = encode(db).astype(np.float32)
    raw[:, :4, :6] = 0.0  # no backscatter: nodata once converted
    scene = write_scene(tmp_path / f"{units}.tif", raw)
    out = tmp_path / "flood.tif"
    refused = predict_cli(scene, out)
    assert refused.exit_code == 2 and "looks like linear power or amplitude" in refused.output
    assert "--units" in refused.output and not out.exists()
    res = predict_cli(scene, out, "--units", units)
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as ds:
        prob = ds.read(1)
        assert ds.tags()["FLOODLAB_SAR_UNITS"] == tag
    assert (prob[:4, :6] == 255).all()
    expected = prob_of_db(db[0])  # the model saw 10*log10 (or 20*log10) of the input
    valid = np.ones((H, W), bool)
    valid[:4, :6] = False
    np.testing.assert_allclose(prob[valid], expected[valid], atol=1e-5)


@pytest.mark.usefixtures("fake_run")
def test_db_scene_passes_and_wrong_units_are_refused(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "db.tif", db_scene(), nodata=float("nan"))
    res = predict_cli(scene, tmp_path / "a.tif")
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "a.tif") as ds:
        np.testing.assert_allclose(ds.read(1), prob_of_db(db_scene()[0]), atol=1e-5)
        assert ds.tags()["FLOODLAB_SAR_UNITS"] == "db"
    res = predict_cli(scene, tmp_path / "b.tif", "--units", "amplitude")
    assert res.exit_code == 2 and "declared --units amplitude" in res.output
    assert "looks like dB already" in res.output and not (tmp_path / "b.tif").exists()


@needs_realdata
@pytest.mark.parametrize(
    "pattern", ["*_VV_*.tif", "SSL4EO-S12/**/VV.tif", "BigEarthNet/**/*_VV.tif"]
)
def test_real_db_scenes_are_accepted_and_read_unchanged(pattern: str) -> None:
    vv = next(S1.glob(pattern))
    with SceneInputs([vv], ["VV"]) as scene:
        assert scene.select(["VV"]) == ["VV"]
        got = scene.read_tile(np.arange(scene.height), np.arange(scene.width))[0]
    with rasterio.open(vv) as ds:
        raw = ds.read(1).astype(np.float32)
        if ds.nodata is not None:
            raw[raw == ds.nodata] = np.nan
    np.testing.assert_array_equal(got, raw)


@pytest.mark.parametrize("data_rows", [slice(None), slice(300, 380)])
def test_a_large_scene_is_judged_without_reading_it_twice(tmp_path: Path, data_rows: slice) -> None:
    # Over 1 Mpx: judged on a grid of windows; when those hold only nodata (data only in
    # rows 300-379, between the windows), on a decimated read of the whole band.
    from floodlab.errors import UnitsError

    rng = np.random.default_rng(0)
    lin = np.full((1, 1040, 1010), np.nan, dtype=np.float32)
    lin[0, data_rows] = 10 ** (rng.normal(-12, 4, lin[0, data_rows].shape) / 10)
    path = tmp_path / "big_VV.tif"
    with rasterio.open(path, "w", driver="GTiff", width=1010, height=1040, count=1,
                       dtype="float32", crs="EPSG:32631", nodata=float("nan"),
                       transform=Affine(10, 0, 5e5, 0, -10, 4.1e6), tiled=True) as ds:  # fmt: skip
        ds.write(lin)
    with pytest.raises(UnitsError, match=r"big_VV\.tif band 1 \(VV\).*--units linear"):
        SceneInputs([path]).select(["VV"])
    with SceneInputs([path], units="linear") as scene:
        scene.select(["VV"])
        rows = np.arange(300, 310)
        got = scene.read_tile(rows, np.arange(1010))[0]
    np.testing.assert_allclose(got, 10 * np.log10(lin[0, 300:310]), rtol=1e-5)
