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


@pytest.mark.parametrize("out", ["/dev/null/x.tif", "<a file>/x.tif"])
def test_predict_refuses_an_output_that_cannot_be_written_before_loading_the_run(
    tmp_path: Path, out: str
) -> None:
    # The run does not exist: the output is checked first, so the message is about it.
    if out.startswith("<a file>"):
        (tmp_path / "notes.txt").write_text("not a folder\n")
        out = str(tmp_path / "notes.txt" / "x.tif")
    elif not Path(out).parent.exists():
        pytest.skip(f"{Path(out).parent} exists on Linux only")
    scene = write_scene(tmp_path / "scene.tif", 20, 20)
    res = CliRunner().invoke(
        main, ["predict", "nope/run", str(scene), "-o", out, "--root", str(tmp_path)]
    )
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert f"-o/--out {out}: cannot be written because " in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["scene.tif"] + (["notes.txt"] if "notes.txt" in out else [])
    )


def test_predict_scene_checks_the_output_before_reading_the_scene(tmp_path: Path) -> None:
    from floodlab.errors import OutputPathError
    from floodlab.predict.scene import predict_scene

    calls: list[tuple[int, ...]] = []

    def predict_fn(batch: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(batch.shape)
        return {"prob": np.zeros((batch.shape[0], 1, *batch.shape[2:]), np.float32)}

    scene = write_scene(tmp_path / "scene.tif", 20, 20)
    with pytest.raises(OutputPathError, match=r"scene\.tif is a file"):
        predict_scene(predict_fn, scene, scene / "flood.tif", bands=["VV", "VH"], window=16,
                      overlap=4)  # fmt: skip
    assert calls == []


def test_a_flora_task_maps_from_sar_alone_and_writes_its_rgb(tmp_path: Path) -> None:
    # The real FLoRA task of the quickstart spec (random weights) behind RunPredictor:
    # the saved-normalisation path, SAR-only prediction and the RGB output.
    import torch

    from floodlab.data.load.normalize import band_coefficients
    from floodlab.predict.predictor import RunPredictor
    from floodlab.predict.scene import predict_scene
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


def test_predict_refuses_to_overwrite_its_input_or_an_existing_map(tmp_path):
    from click.testing import CliRunner

    from floodlab.cli import main

    scene = tmp_path / "scene.tif"
    scene.write_bytes(b"the scene the user cares about")
    out = tmp_path / "flood.tif"
    out.write_bytes(b"last week's map")
    for target, said in ((scene, "is the input"), (out, "already exists")):
        args = ["predict", "nope/latest", str(scene), "-o", str(target), "--root", str(tmp_path)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert said in result.output and "Traceback" not in result.output
    # --overwrite allows replacing an older map, never the input.
    args = ["predict", "nope/latest", str(scene), "-o", str(scene), "--overwrite"]
    result = CliRunner().invoke(main, [*args, "--root", str(tmp_path)])
    assert result.exit_code == 2 and "is the input" in result.output
    assert scene.read_bytes() == b"the scene the user cares about"
    assert out.read_bytes() == b"last week's map"
