"""Test-time augmentation: outputs turned back onto the input's pixels and averaged."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.predict.tta import TransformMean, apply, invert, transforms, with_tta


def pixelwise(batch: np.ndarray) -> dict[str, np.ndarray]:
    """A model without any sense of position or orientation."""
    return {"prob": 1.0 / (1.0 + np.exp(-batch[:, :1])), "rgb": np.tanh(batch[:, :1]).repeat(3, 1)}


def column_ramp(batch: np.ndarray) -> dict[str, np.ndarray]:
    """A model that only knows where a pixel is: its column, 0 on the left to 1 on the right."""
    b, _, h, w = batch.shape
    ramp = np.broadcast_to(np.linspace(0.0, 1.0, w, dtype=np.float32), (b, 1, h, w))
    return {"prob": ramp.copy()}


@pytest.mark.parametrize("mode", ["none", "flips", "dihedral"])
def test_every_transform_is_undone_on_non_square_inputs(mode: str) -> None:
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 7)).astype(np.float32)
    for t in transforms(mode):
        assert np.array_equal(invert(apply(x, t), t), x)
    assert len(transforms(mode)) == {"none": 1, "flips": 4, "dihedral": 8}[mode]
    # The eight transforms are the eight distinct symmetries of a square.
    square = np.arange(16.0).reshape(4, 4)
    assert len({apply(square, t).tobytes() for t in transforms(mode)}) == len(transforms(mode))


@pytest.mark.parametrize("mode", ["flips", "dihedral"])
def test_a_model_without_orientation_gives_the_same_map_on_every_pixel(mode: str) -> None:
    x = np.random.default_rng(1).normal(size=(3, 2, 24, 40)).astype(np.float32)
    got, plain = TransformMean(pixelwise, mode)(x), pixelwise(x)
    assert set(got) == {"prob", "rgb"}
    for k in got:
        assert got[k].shape == plain[k].shape
        np.testing.assert_allclose(got[k], plain[k], rtol=1e-6, atol=1e-6)


def test_outputs_are_averaged_in_the_inputs_frame() -> None:
    # The ramp model's flipped predictions, flipped back, run from right to left: averaged
    # with the plain ones, every column is 0.5.
    x = np.zeros((1, 1, 6, 9), np.float32)
    np.testing.assert_allclose(TransformMean(column_ramp, "flips")(x)["prob"], 0.5, atol=1e-6)
    # With quarter turns, rows and columns of a square input mix: the mean of the column
    # ramp and the row ramps over the dihedral group is symmetric under every transform.
    y = TransformMean(column_ramp, "dihedral")(np.zeros((1, 1, 8, 8), np.float32))["prob"][0, 0]
    np.testing.assert_allclose(y, 0.5, atol=1e-6)
    assert with_tta(column_ramp, "none") is column_ramp
    with pytest.raises(ValueError, match="unknown mode 'spin'"):
        with_tta(column_ramp, "spin")


def _scene(path: Path) -> Path:
    rng = np.random.default_rng(2)
    data = rng.normal(-12.0, 4.0, (1, 40, 56)).astype(np.float32)
    profile = dict(driver="GTiff", width=56, height=40, count=1, dtype="float32",
                   crs="EPSG:32631", transform=Affine(10, 0, 5e5, 0, -10, 4.1e6))  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        ds.set_band_description(1, "VV")
    return path


def test_predict_with_tta_writes_the_same_map_for_a_pixelwise_model_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import floodlab.predict.restore
    from floodlab.predict.predictor import RunPredictor

    calls: list[tuple[int, ...]] = []

    def predict_fn(batch: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(batch.shape)
        return {"prob": 1.0 / (1.0 + np.exp(-(batch[:, :1] + 12.0) / 4.0))}

    model = SimpleNamespace(
        predict_fn=predict_fn,
        normalize=lambda x: np.nan_to_num(x).astype(np.float32),
        bands=["VV"],
        write_rgb=False,
    )
    monkeypatch.setattr(floodlab.predict.restore, "load_trained", lambda *a, **k: object())
    monkeypatch.setattr(RunPredictor, "from_trained", classmethod(lambda cls, *a, **k: model))
    scene = _scene(tmp_path / "scene.tif")

    def flood_map(name: str, *extra: str) -> tuple[np.ndarray, dict[str, str]]:
        out = tmp_path / name
        args = ["predict", "some/run", str(scene), "-o", str(out), "--window", "32",
                "--overlap", "8", *extra]  # fmt: skip
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        with rasterio.open(out) as ds:
            return ds.read(), ds.tags()

    plain, plain_tags = flood_map("plain.tif")
    plain_calls = len(calls)
    calls.clear()
    tta, tags = flood_map("tta.tif", "--tta", "dihedral")
    assert len(calls) == 8 * plain_calls  # one pass per transform
    np.testing.assert_allclose(tta, plain, atol=1e-6)
    assert tags["FLOODLAB_TTA"] == "dihedral" and "FLOODLAB_TTA" not in plain_tags
    refused = CliRunner().invoke(main, ["predict", "some/run", str(scene), "-o",
                                        str(tmp_path / "x.tif"), "--tta", "spin"])  # fmt: skip
    assert refused.exit_code == 2 and "--tta" in refused.output
