"""`floodlab predict` end to end: a briefly trained quickstart run maps a synthetic scene."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from floodlab.cli import main

ROOT = Path(__file__).resolve().parents[2]


def write_scene(path: Path, height: int = 150, width: int = 170) -> Path:
    """A VV/VH scene in dB with named bands, a nodata strip and 10 m UTM pixels."""
    rng = np.random.default_rng(1)
    data = rng.normal(-12.0, 4.0, (2, height, width)).astype(np.float32)
    data[1] -= 7.0
    data[:, :, :5] = np.nan
    profile = dict(driver="GTiff", width=width, height=height, count=2, dtype="float32",
                   crs="EPSG:32629", transform=Affine(10, 0, 400000, 0, -10, 4500000),
                   nodata=float("nan"))  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        ds.set_band_description(1, "VV")
        ds.set_band_description(2, "VH")
    return path


def test_predict_reports_a_missing_scene_and_an_unknown_run(tmp_path: Path) -> None:
    missing = CliRunner().invoke(
        main, ["predict", "quickstart", str(tmp_path / "gone.tif"), "-o", str(tmp_path / "f.tif")]
    )
    assert missing.exit_code == 2 and "gone.tif" in missing.output
    scene = write_scene(tmp_path / "scene.tif")
    unknown = CliRunner().invoke(
        main,
        ["predict", "nope/run", str(scene), "-o", str(tmp_path / "f.tif"), "--root", str(tmp_path)],
    )
    assert (
        unknown.exit_code == 2
        and "nope/run" in unknown.output
        and "Traceback" not in unknown.output
    )
    assert not (tmp_path / "f.tif").exists()


def test_a_flora_task_maps_from_sar_alone_and_writes_its_rgb(tmp_path: Path) -> None:
    # The real FLoRA task of the quickstart spec (random weights) behind RunPredictor:
    # the saved-normalisation path, SAR-only prediction and the RGB output.
    import torch

    from floodlab.data.normalize import band_coefficients
    from floodlab.predict.scene import RunPredictor, predict_scene
    from floodlab.specs import load_spec
    from floodlab.tasks import build_task

    torch.manual_seed(0)
    spec = load_spec(ROOT / "experiments" / "quickstart.yaml")
    stats = {"VV": {"mean": -12.0, "std": 4.0}, "VH": {"mean": -19.0, "std": 4.0}}
    norm = {
        "image": {
            "bands": ["VV", "VH"],
            "coefficients": [band_coefficients(b, "zscore", stats) for b in ("VV", "VH")],
        }
    }
    trained = SimpleNamespace(spec=spec, task=build_task(spec), normalization=norm)
    model = RunPredictor.from_trained(trained, device="cpu")
    assert model.bands == ["VV", "VH"] and model.write_rgb
    scene = write_scene(tmp_path / "scene.tif", 100, 90)
    result = predict_scene(model.predict_fn, scene, tmp_path / "flood.tif", bands=model.bands,
                           normalize=model.normalize, window=64, overlap=16,
                           write_rgb=model.write_rgb)  # fmt: skip
    with rasterio.open(result.path) as ds:
        prob = ds.read(1)
    with rasterio.open(result.rgb_path) as ds:
        rgb = ds.read()
    assert ((prob[:, 5:] >= 0) & (prob[:, 5:] <= 1)).all() and (prob[:, :5] == 255).all()
    assert rgb.shape == (3, 100, 90) and (rgb[:, :, :5] == 255).all()


@pytest.mark.ray
@pytest.mark.slow
def test_a_briefly_trained_quickstart_run_maps_a_scene(ray_session, tmp_path: Path) -> None:
    from floodlab.specs import load_spec
    from floodlab.train.driver import train

    overrides = [
        "trainer.epochs=1",
        "trainer.batch_size=4",
        "data.synthetic.chips=6",
        "data.synthetic.size=64",
        "data.patch_size=64",
        f"data.store={tmp_path / 'store.zarr'}",
        f"logging.root={tmp_path / 'runs'}",
        "logging.image_every=0",
    ]
    train(load_spec(ROOT / "experiments" / "quickstart.yaml", overrides))
    scene = write_scene(tmp_path / "scene.tif")
    out = tmp_path / "maps" / "flood.tif"
    args = ["predict", "quickstart/latest", str(scene), "-o", str(out), "--root", str(tmp_path / "runs"),
            "--window", "64", "--overlap", "16", "--cog"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    with rasterio.open(scene) as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.shape) == (src.crs, src.transform, src.shape)
        prob, mask = dst.read()
        assert dst.tags()["FLOODLAB_RUN"] == "quickstart/latest"
    assert (prob[:, :5] == 255).all() and (mask[:, :5] == 255).all()
    valid = prob[:, 5:]
    assert ((valid >= 0) & (valid <= 1)).all()
    assert set(np.unique(mask[:, 5:])) <= {0.0, 1.0}
    with rasterio.open(out.with_name("flood_rgb.tif")) as rgb:  # FLoRA's SAR->RGB translation
        assert rgb.count == 3 and rgb.shape == (150, 170)
