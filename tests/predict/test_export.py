"""`floodlab export` and `floodlab predict --model`: ONNX / TorchScript parity with the run's
model at sizes other than the traced one, the same flood map from the file as from the run
on a real Sentinel-1 scene, and clean refusals of what cannot be exported or used."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import rasterio
import torch
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.data.load.normalize import band_coefficients, normalize_with_params
from floodlab.errors import ExportError
from floodlab.predict.export import CHECK_SHAPE, TRACE_HW, example_input, export_run
from floodlab.predict.exported import ExportedModel, sidecar_path
from floodlab.predict.graph import build_graph
from floodlab.predict.predictor import TaskPredictFn, model_bands
from floodlab.predict.restore import load_trained
from floodlab.specs import ExperimentSpec, load_spec
from floodlab.tracking import RunDir

WriteRun = Callable[..., RunDir]

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
REAL_SCENE = (
    ROOT.parent
    / "shared"
    / "realdata"
    / "s1_scenes"
    / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
)
needs_real_scene = pytest.mark.skipif(
    not REAL_SCENE.is_file(), reason=f"real Sentinel-1 scene not present at {REAL_SCENE}"
)
NO_STORE = "data.store=/nonexistent/store.zarr"  # runs written without a store
PARITY = 1e-4  # largest accepted |onnxruntime - torch| on the CPU


def params(spec: ExperimentSpec, bands: list[str]) -> dict[str, Any]:
    """Saved normalisation parameters of a fixed-range mode (no store statistics needed)."""
    mode = spec.data.normalize

    def section(names: list[str]) -> dict[str, Any]:
        return {
            "bands": names,
            "coefficients": [band_coefficients(b, mode) for b in names],
            "mean": [None] * len(names),
            "std": [None] * len(names),
        }

    out: dict[str, Any] = {
        "mode": mode,
        "target_clip": float(spec.data.target_clip),
        "image": section(bands),
    }
    if spec.data.optical_bands:
        out["optical"] = section(list(spec.data.optical_bands))
    if spec.data.target_bands:
        out["target"] = section(list(spec.data.target_bands))
    return out


# family -> (experiment, small overrides, bands of the saved "image" section)
FAMILIES: dict[str, tuple[str, list[str], list[str]]] = {
    "resunet": (
        "resunet_sen1floods11.yaml",
        ["model.widths=[8,16]", "model.se_reduction=4", "data.normalize=minus1_1"],
        ["VV", "RATIO", "MAGNITUDE"],
    ),
    "resunet_per_patch": (
        "resunet_sen1floods11.yaml",
        ["model.widths=[8,16]", "model.se_reduction=4", "data.normalize=per_patch"],
        ["VV", "RATIO", "MAGNITUDE"],
    ),
    "flora": (
        "quickstart.yaml",
        [
            "data.synthetic=null",
            "data.normalize=minus1_1",
            "model.widths=[8,16]",
            "model.fusion.scales=1",
        ],
        ["VV", "VH"],
    ),
    "sarkd_student": (
        "sarkd_student_kd.yaml",
        ["distill.teacher.run=teacher/latest"],  # the teacher is outside the checkpoint
        ["VV", "VH"],
    ),
    "sarkd_teacher": ("sarkd_teacher_unet.yaml", [], ["VV", "VH"]),
    "cloud_unet": (
        "cloud_unet_cloudsen12.yaml",
        ["model.decoder_widths=[16,16,8,8,8]"],
        ["B4", "B3", "B2"],
    ),
}


def family_run(write: WriteRun, root: Path, family: str) -> RunDir:
    """An untrained, seeded run of a family with small widths."""
    name, overrides, bands = FAMILIES[family]
    spec = load_spec(EXPERIMENTS / name, [NO_STORE, *overrides])
    return write(root, spec, params(spec, bands))


def torch_outputs(graph: torch.nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in graph(x)]


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "resunet"])
def test_onnx_and_torchscript_match_the_run_at_other_sizes(
    tmp_path: Path, family: str, untrained_run: WriteRun
) -> None:
    run = family_run(untrained_run, tmp_path / "runs", family)
    trained = load_trained(run.path)
    graph = build_graph(trained)
    outputs = ["prob", "rgb"] if family == "flora" else ["prob"]
    # Sizes the file was neither traced nor checked at: no padding needed, and padding needed.
    shapes = [(2, 48, 80), (1, 37, 53)]
    assert all(s[1:] not in (TRACE_HW, CHECK_SHAPE[1:]) for s in shapes)
    inputs = [example_input(graph.normalize, *s, seed=7) for s in shapes]

    onnx_file = tmp_path / "out" / "flood.onnx"
    result = export_run(run.path, onnx_file, fmt="onnx")
    assert list(result.outputs) == outputs and result.bands == model_bands(trained.spec)
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == outputs
    for x in inputs:
        expected = torch_outputs(graph, x)
        got = session.run(None, {"image": x.numpy()})
        assert max_diff(got, expected) <= PARITY, (family, tuple(x.shape))
        prob = got[0]
        assert prob.shape == (x.shape[0], 1, *x.shape[2:])
        assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0

    ts_file = tmp_path / "out" / "flood.pt"
    export_run(run.path, ts_file, fmt="torchscript")
    module = torch.jit.load(str(ts_file)).eval()
    for x in inputs:
        with torch.no_grad():
            got = [t.numpy() for t in module(x)]
        assert max_diff(got, torch_outputs(graph, x)) <= PARITY, (family, tuple(x.shape))

    sidecar = json.loads(sidecar_path(onnx_file).read_text())
    assert sidecar["family"] == trained.spec.model.kind
    assert sidecar["input"]["bands"] == model_bands(trained.spec)
    assert list(sidecar["outputs"]) == outputs
    assert sidecar["check"]["max_abs_diff"] <= PARITY


@pytest.mark.parametrize("family", ["resunet", "resunet_per_patch", "flora"])
def test_inference_graph_is_the_runs_own_normalisation_and_model(
    tmp_path: Path, family: str, untrained_run: WriteRun
) -> None:
    # What is exported (no export needed): physical bands in, the run's prediction out.
    run = family_run(untrained_run, tmp_path / "runs", family)
    trained = load_trained(run.path)
    graph = build_graph(trained)
    bands = model_bands(trained.spec)
    x = example_input(graph.normalize, 2, 40, 56, seed=3)
    x[1, 0, 10:20, 30:40] = float("nan")  # nodata in one band only
    fn = TaskPredictFn(trained.task, "cpu")
    normalised = np.stack(
        [normalize_with_params(s, trained.normalization, "image", bands) for s in x.numpy()]
    )
    expected = fn(normalised)
    got = torch_outputs(graph, x)
    assert max_diff(got[:1], [expected["prob"]]) <= 1e-5
    if family == "flora":
        assert max_diff(got[1:], [expected["rgb"]]) <= 1e-5


@pytest.fixture(scope="module")
def vv_run(tmp_path_factory: pytest.TempPathFactory, untrained_run: WriteRun) -> RunDir:
    """An untrained ResUNet on VV alone (the real scene has one VV band, in dB)."""
    spec = load_spec(
        EXPERIMENTS / "resunet_sen1floods11.yaml",
        [
            NO_STORE,
            "data.image_bands=[VV]",
            "model.in_channels=1",
            "model.widths=[8,16]",
            "model.se_reduction=4",
            "data.normalize=minus1_1",
        ],
    )
    return untrained_run(tmp_path_factory.mktemp("runs"), spec, params(spec, ["VV"]))


@pytest.fixture(scope="module")
def vv_onnx(vv_run: RunDir, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exported") / "flood.onnx"
    result = CliRunner().invoke(main, ["export", str(vv_run.path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "sidecar" in result.output
    assert out.is_file() and sidecar_path(out).is_file()
    return out


@pytest.mark.slow
@needs_real_scene
def test_predict_with_onnx_gives_the_runs_flood_map_on_a_real_scene(
    vv_run: RunDir, vv_onnx: Path, tmp_path: Path
) -> None:
    # 268 x 217 px of VV in dB (nodata -99), in blended windows of 128 px; a copy of it with
    # a nodata block, since the file itself has none.
    scene = tmp_path / REAL_SCENE.name
    with rasterio.open(REAL_SCENE) as ds:
        profile, raw = ds.profile, ds.read(1)
    assert profile["count"] == 1 and profile["nodata"] == -99.0
    raw[:20, :30] = -99.0
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(raw, 1)
    window = ["--window", "128", "--overlap", "32"]

    def flood_map(model: list[str], name: str, *extra: str) -> np.ndarray:
        out = tmp_path / name
        args = ["predict", *model, str(scene), "-o", str(out), *window, *extra]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as ds:
            assert (ds.crs, ds.transform, ds.shape) == (
                profile["crs"],
                profile["transform"],
                raw.shape,
            )
            if model[0] == "--model":
                assert ds.tags()["FLOODLAB_MODEL"] == vv_onnx.name
            return ds.read()

    # An untrained model's probabilities sit on one side of 0.5: threshold at their median,
    # so that the mask has both classes and many pixels lie near the threshold.
    first = flood_map([str(vv_run.path)], "first.tif")
    threshold = float(np.median(first[0][first[0] != 255]))
    ref = flood_map([str(vv_run.path)], "run.tif", "--threshold", str(threshold))
    got = flood_map(["--model", str(vv_onnx)], "onnx.tif", "--threshold", str(threshold))
    nodata = ref[0] == 255
    assert nodata[:20, :30].all() and (nodata == (got[0] == 255)).all()  # same nodata
    prob_ref, prob_got = ref[0][~nodata], got[0][~nodata]
    assert np.abs(prob_ref - prob_got).max() <= PARITY
    # The masks may differ only where the probability lies within the parity bound of the
    # threshold: there the float rounding of the two runtimes decides the side.
    mask_ref, mask_got = ref[1][~nodata], got[1][~nodata]
    differ = mask_ref != mask_got
    assert (np.abs(prob_ref[differ] - threshold) <= PARITY).all()
    assert differ.sum() <= max(1, differ.size // 1000)
    assert 0.3 < float(mask_ref.mean()) < 0.7  # both classes: not a degenerate map


@pytest.mark.slow
def test_torchscript_model_predicts_a_scene_like_the_run(vv_run: RunDir, tmp_path: Path) -> None:
    # A synthetic one-band dB scene with a nodata block, in a GeoTIFF.
    rng = np.random.default_rng(0)
    vv = rng.normal(-12.0, 5.0, (90, 70)).astype(np.float32)
    vv[:10, :15] = np.nan
    scene = tmp_path / "scene_VV.tif"
    profile = {
        "driver": "GTiff",
        "height": 90,
        "width": 70,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:32631",
        "transform": rasterio.Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0),
        "nodata": float("nan"),
    }
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(vv, 1)
        dst.set_band_description(1, "VV")
    model = tmp_path / "flood.pt"
    exported = CliRunner().invoke(
        main, ["export", str(vv_run.path), "--format", "torchscript", "-o", str(model)]
    )
    assert exported.exit_code == 0, exported.output
    maps = []
    for args in ([str(vv_run.path)], ["--model", str(model)]):
        out = tmp_path / f"map{len(maps)}.tif"
        result = CliRunner().invoke(main, ["predict", *args, str(scene), "-o", str(out)])
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as ds:
            maps.append(ds.read())
    assert np.abs(maps[0][0] - maps[1][0]).max() <= 1e-5
    assert (maps[0][0][:10, :15] == 255).all() and (maps[1][0][:10, :15] == 255).all()


def test_exporting_a_cyclegan_run_exits_2_and_writes_nothing(
    tmp_path: Path, untrained_run: WriteRun
) -> None:
    spec = load_spec(
        EXPERIMENTS / "cyclegan_sen12ms_rgb.yaml", [NO_STORE, "model.ngf=4", "model.ndf=4"]
    )
    run = untrained_run(tmp_path / "runs", spec, params(spec, list(spec.data.image_bands)))
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(main, ["export", str(run.path), "-o", str(out / "m.onnx")])
    assert result.exit_code == 2, result.output
    assert "cyclegan" in result.output and "no flood or cloud mask" in result.output
    assert "Traceback" not in result.output
    assert list(out.iterdir()) == []


def test_exporting_a_missing_run_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(
        main, ["export", "nope/latest", "--root", str(tmp_path / "runs"), "-o", str(out / "m.onnx")]
    )
    assert result.exit_code == 2, result.output
    assert "not found" in result.output and "Traceback" not in result.output
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_export_never_replaces_files_without_overwrite(vv_run: RunDir, vv_onnx: Path) -> None:
    before = {p: p.read_bytes() for p in vv_onnx.parent.iterdir()}
    assert {p.name for p in before} == {"flood.onnx", "flood.onnx.json", "model_card.md"}
    again = ["export", str(vv_run.path), "-o", str(vv_onnx), "--format", "torchscript"]
    result = CliRunner().invoke(main, again)
    assert result.exit_code == 2 and "--overwrite" in result.output, result.output
    assert {p: p.read_bytes() for p in vv_onnx.parent.iterdir()} == before
    # A model card of another run in the folder is not replaced either.
    other = vv_onnx.parent.parent / "other"
    other.mkdir()
    (other / "model_card.md").write_text("# my own notes\n")
    result = CliRunner().invoke(main, ["export", str(vv_run.path), "-o", str(other / "m.onnx")])
    assert result.exit_code == 2 and "--overwrite" in result.output, result.output
    assert sorted(p.name for p in other.iterdir()) == ["model_card.md"]


@pytest.mark.slow
def test_predict_model_refuses_missing_or_corrupt_sidecar_and_existing_output(
    vv_onnx: Path, tmp_path: Path
) -> None:
    scene = tmp_path / "scene.tif"
    with rasterio.open(
        scene,
        "w",
        driver="GTiff",
        height=20,
        width=20,
        count=1,
        dtype="float32",
        crs="EPSG:32631",
        transform=rasterio.Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0),
    ) as dst:
        dst.write(np.full((1, 20, 20), -10.0, np.float32))
        dst.set_band_description(1, "VV")

    def predict(model: Path, out: Path, *extra: str) -> Any:
        args = ["predict", "--model", str(model), str(scene), "-o", str(out), *extra]
        return CliRunner().invoke(main, args)

    model = tmp_path / "m.onnx"
    model.write_bytes(vv_onnx.read_bytes())
    result = predict(model, tmp_path / "a.tif")  # no sidecar beside the copy
    assert result.exit_code == 2 and "sidecar" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "a.tif").exists()

    sidecar_path(model).write_text("{not json")
    result = predict(model, tmp_path / "a.tif")
    assert result.exit_code == 2 and "m.onnx.json" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "a.tif").exists()

    sidecar_path(model).write_text(json.dumps({"format": "onnx"}))  # not a floodlab sidecar
    result = predict(model, tmp_path / "a.tif")
    assert result.exit_code == 2 and "not the sidecar" in result.output, result.output

    # A valid sidecar beside a file that is not ONNX.
    sidecar_path(model).write_text(sidecar_path(vv_onnx).read_text())
    model.write_bytes(b"not an onnx model")
    result = predict(model, tmp_path / "a.tif")
    assert result.exit_code == 2 and "onnxruntime cannot load" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "a.tif").exists()

    result = predict(tmp_path / "missing.onnx", tmp_path / "a.tif")
    assert result.exit_code == 2 and "missing.onnx" in result.output, result.output

    existing = tmp_path / "existing.tif"
    existing.write_bytes(b"keep me")
    result = predict(vv_onnx, existing)
    assert result.exit_code == 2 and "--overwrite" in result.output, result.output
    assert existing.read_bytes() == b"keep me"
    result = predict(vv_onnx, existing, "--overwrite")
    assert result.exit_code == 0, result.output
    with rasterio.open(existing) as ds:
        assert ds.count == 2 and ds.shape == (20, 20)


def test_exported_model_load_names_the_problem(tmp_path: Path) -> None:
    model = tmp_path / "flood.onnx"
    with pytest.raises(ExportError, match="no such file"):
        ExportedModel.load(model)
    model.write_bytes(b"x")
    with pytest.raises(ExportError, match=r"sidecar flood\.onnx\.json is missing"):
        ExportedModel.load(model)
    sidecar_path(model).write_text("[1, 2]")
    with pytest.raises(ExportError, match="not the sidecar of a floodlab export"):
        ExportedModel.load(model)
    # Every key, but values no export writes: refused when loaded, not at first use.
    good = {
        "format": "onnx",
        "input": {"name": "image", "bands": ["VV"]},
        "outputs": {"prob": {}},
        "threshold": 0.5,
        "family": "resunet",
        "run": "r",
    }
    for key, value in (("input", {"bands": "VV"}), ("outputs", []), ("threshold", "0.5")):
        sidecar_path(model).write_text(json.dumps({**good, key: value}))
        with pytest.raises(ExportError, match=f"malformed \\['{key}'\\]"):
            ExportedModel.load(model)
    sidecar_path(model).write_text(json.dumps(good))
    loaded = ExportedModel.load(model)
    assert loaded.bands == ["VV"] and loaded.outputs == ("prob",) and loaded.threshold == 0.5
