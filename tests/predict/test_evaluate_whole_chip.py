"""`floodlab evaluate` scores every valid pixel of whole chips, with intervals and baselines."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.data.load.dataset import LABEL_ARRAY, FloodDataset
from floodlab.data.load.store import open_store
from floodlab.errors import DataError
from floodlab.metrics.bootstrap import DEFINITIONS, SUMMARY_KEYS
from floodlab.predict import restore
from floodlab.predict.chips import ChipPredictor
from floodlab.predict.evaluate import evaluate_run
from floodlab.specs import ExperimentSpec, load_spec
from floodlab.tracking import RunDir

WriteRun = Callable[[Path, ExperimentSpec], RunDir]

ROOT = Path(__file__).resolve().parents[2]
RESUNET_BANDS = ["VV", "RATIO", "MAGNITUDE"]


def expected_chips(store_path: str | Path, split: str, sources: list[str], bands: list[str]):
    """(chip ids, valid pixels of each whole chip) read straight from the store."""
    store = open_store(store_path)
    ids, valid = [], []
    for i in store.split_indices(split):
        source = str(store.label_sources[i])
        if source not in sources:
            continue
        label = store.read_raw(int(i), [LABEL_ARRAY[source]])[LABEL_ARRAY[source]]
        data = np.isfinite(store.read_bands(int(i), bands)).all(axis=0)
        ids.append(str(store.ids[i]))
        valid.append(int(((label >= 0) & data).sum()))
    return ids, valid


def read_rows(report: dict) -> list[dict[str, str]]:
    return list(csv.DictReader(Path(report["files"]["per_image"]).read_text().splitlines()))


@pytest.fixture(scope="module")
def resunet_run(
    tiny_s1f11_store: Path,
    tmp_path_factory: pytest.TempPathFactory,
    untrained_resunet: Callable[..., RunDir],
) -> RunDir:
    """An untrained tiny ResUNet on hand + weak labels with 32 px patches (chips are 64 px)."""
    return untrained_resunet(tmp_path_factory.mktemp("runs"), tiny_s1f11_store)


@pytest.fixture(scope="module")
def hand_only_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store converted with hand labels only (no weak labels)."""
    from floodlab.data.convert.pipeline import convert
    from floodlab.data.synth import write_synthetic

    base = tmp_path_factory.mktemp("hand_only")
    raw = write_synthetic("sen1floods11", base / "raw", chips=6, size=48, seed=5)
    return convert("sen1floods11", raw, base / "hand.zarr", derived=("RATIO", "MAGNITUDE"))


@pytest.fixture
def pointwise_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Swap the run's network for a 1x1 convolution: a fully convolutional stand-in whose
    output at a pixel does not depend on its neighbours."""
    real = restore.load_trained

    def load(*args: object, **kwargs: object) -> restore.Trained:
        trained = real(*args, **kwargs)  # type: ignore[arg-type]
        torch.manual_seed(1)
        trained.task.nets["model"] = torch.nn.Conv2d(len(RESUNET_BANDS), 1, 1)
        return trained

    monkeypatch.setattr(restore, "load_trained", load)
    yield


def test_whole_chips_are_scored_in_full(resunet_run: RunDir, tiny_s1f11_store: Path) -> None:
    report = evaluate_run(resunet_run.path, split="test", resamples=200)
    ids, valid = expected_chips(tiny_s1f11_store, "test", ["hand", "weak"], RESUNET_BANDS)
    rows = read_rows(report)
    assert [r["id"] for r in rows] == ids and report["images"] == len(ids) > 0
    assert all((r["height"], r["width"]) == ("64", "64") for r in rows)  # not the 32 px crop
    assert [int(r["valid_pixels"]) for r in rows] == valid
    for p in report["predictors"].values():  # every predictor on exactly those pixels
        assert p["tp"] + p["fp"] + p["fn"] + p["tn"] == sum(valid)
    assert report["evaluation"]["chip_shape"] == [64, 64]
    assert "one fully convolutional pass" in report["evaluation"]["prediction"]


def test_a_chip_larger_than_the_window_is_blended_like_a_whole_chip_pass(
    resunet_run: RunDir, pointwise_model: None
) -> None:
    whole = evaluate_run(resunet_run.path, split="val", resamples=50, overwrite=True)
    windowed = evaluate_run(
        resunet_run.path, split="val", window=24, overlap=8, resamples=50, overwrite=True
    )
    assert "blended windows of 24 px" in windowed["evaluation"]["prediction"]
    assert whole["images"] == windowed["images"] > 0
    for a, b in zip(read_rows(whole), read_rows(windowed), strict=True):
        assert a["valid_pixels"] == b["valid_pixels"]
        assert [a[f"{k}_model"] for k in ("tp", "fp", "fn", "tn")] == [
            b[f"{k}_model"] for k in ("tp", "fp", "fn", "tn")
        ]


def test_windows_are_blended_over_every_pixel_and_normalised_on_their_own() -> None:
    image = np.random.default_rng(0).normal(3.0, 2.0, (2, 1, 64, 48)).astype(np.float32)
    image[0, 0, :5, :5] = np.nan  # nodata

    def identity(batch: np.ndarray) -> dict[str, np.ndarray]:
        return {"prob": batch[:, :1]}

    def standardise(x: np.ndarray) -> np.ndarray:
        finite = np.isfinite(x)
        out = (x - x[finite].mean()) / x[finite].std()
        return np.where(finite, out, 0.0).astype(np.float32)

    whole = ChipPredictor(identity, window=64, overlap=0)(image, standardise)["prob"]
    np.testing.assert_allclose(whole[1, 0], standardise(image[1, 0]), atol=1e-5)
    # Windows of 32 px without overlap tile the chip: each block is standardised alone.
    tiled = ChipPredictor(identity, window=32, overlap=0)(image, standardise)["prob"]
    assert tiled.shape == (2, 1, 64, 48)
    block = tiled[1, 0, :32, :32]
    assert abs(block.mean()) < 1e-5 and block.std() == pytest.approx(1.0, abs=1e-4)


def test_bootstrap_intervals_hold_the_estimate_and_repeat_with_the_seed(
    resunet_run: RunDir,
) -> None:
    first = evaluate_run(resunet_run.path, split="train", resamples=300, seed=7, overwrite=True)
    again = evaluate_run(resunet_run.path, split="train", resamples=300, seed=7, overwrite=True)
    for name, p in first["predictors"].items():
        assert p["ci95"] == again["predictors"][name]["ci95"]
        for key in SUMMARY_KEYS:
            low, high = p["ci95"][key]
            assert low <= p[key] <= high, (name, key)
            assert low < high or key == "recall"  # 20+ different chips vary (all-water: 1)
    saved = json.loads(Path(first["files"]["metrics"]).read_text())
    assert saved["bootstrap"] == {"resamples": 300, "seed": 7, "level": 0.95}
    assert "300 resamples" in saved["definitions"]["ci95"]


def test_label_sources_choose_the_labels_scored(
    resunet_run: RunDir, tiny_s1f11_store: Path
) -> None:
    weak = evaluate_run(
        resunet_run.path, split="train", label_sources=["weak"], resamples=20, overwrite=True
    )
    ids, _ = expected_chips(tiny_s1f11_store, "train", ["weak"], RESUNET_BANDS)
    rows = read_rows(weak)
    assert weak["label_sources"] == ["weak"]
    assert [r["id"] for r in rows] == ids and {r["source"] for r in rows} == {"weak"}
    assert set(weak["by_source"]) == {"weak"}


def test_default_label_sources_are_those_the_store_has_and_a_missing_one_is_refused(
    resunet_run: RunDir, hand_only_store: Path
) -> None:
    # The run trains on hand + weak; this store has hand labels only.
    report = evaluate_run(resunet_run.path, split="test", store=str(hand_only_store), resamples=20)
    assert report["label_sources"] == ["hand"]
    with pytest.raises(DataError, match=r"has no \['weak'\] labels; it has \['hand'\]"):
        evaluate_run(
            resunet_run.path,
            split="test",
            store=str(hand_only_store),
            label_sources=["weak"],
            overwrite=True,
        )
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(resunet_run.path),
            "--store",
            str(hand_only_store),
            "--label-sources",
            "hand,weak",
            "--overwrite",
        ],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "has no ['weak'] labels; it has ['hand']" in result.output


def test_otsu_and_all_water_are_reported_with_their_definitions(resunet_run: RunDir) -> None:
    result = CliRunner().invoke(
        main,
        ["evaluate", str(resunet_run.path), "--split", "val", "--bootstrap", "50", "--overwrite"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((resunet_run.eval_dir("val") / "metrics.json").read_text())
    water = report["predictors"]["all_water"]
    assert water["recall"] == 1.0 and water["fn"] == water["tn"] == 0
    assert water["iou"] == pytest.approx(water["tp"] / (water["tp"] + water["fp"]))
    assert "Otsu" in report["predictors"]["otsu"]["definition"]
    assert "(dB)" in report["predictors"]["otsu"]["definition"]
    assert "every valid pixel predicted" in water["definition"]
    for key, text in DEFINITIONS.items():
        assert report["definitions"][key] == text
    for shown in ("otsu", "all_water", "mean image IoU", "pooled IoU", "95% bootstrap"):
        assert shown in result.output
    # Model minus each baseline, with the interval of the paired difference.
    assert set(report["differences"]) == {"model - otsu", "model - all_water"}
    diff = report["differences"]["model - otsu"]["mean_image_iou"]
    model, otsu = report["predictors"]["model"], report["predictors"]["otsu"]
    assert diff["value"] == pytest.approx(model["mean_image_iou"] - otsu["mean_image_iou"])
    assert diff["ci95"][0] <= diff["value"] <= diff["ci95"][1]
    assert "model - otsu: mean image IoU" in result.output
    header = (resunet_run.eval_dir("val") / "per_image.csv").read_text().splitlines()[0]
    assert "iou_otsu" in header and "iou_all_water" in header and "tp_all_water" in header


@pytest.fixture(scope="module")
def flora_run(
    tiny_s1f11_store: Path, tmp_path_factory: pytest.TempPathFactory, untrained_run: WriteRun
) -> RunDir:
    """An untrained tiny FLoRA (SAR -> RGB translation and flood segmentation)."""
    spec = load_spec(
        ROOT / "experiments" / "quickstart.yaml",
        [
            f"data.store={tiny_s1f11_store}",
            "data.synthetic=null",
            "data.patch_size=32",
            "model.widths=[8,16]",
            "model.fusion.scales=1",
        ],
    )
    return untrained_run(tmp_path_factory.mktemp("flora_runs"), spec)


def test_flora_with_optical_translation_is_an_oracle_beside_the_mean_image(
    flora_run: RunDir,
) -> None:
    result = CliRunner().invoke(
        main, ["evaluate", str(flora_run.path), "--split", "test", "--bootstrap", "50"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((flora_run.eval_dir("test") / "metrics.json").read_text())
    # The headline is SAR alone, beside the per-band-mean baseline.
    assert set(report["translation"]) == {"model", "mean_image"}
    for name in ("model", "mean_image"):
        assert np.isfinite(report["translation"][name]["psnr"])
        assert 0.0 <= report["translation"][name]["ssim"] <= 1.0
    # The fused translation saw its own target: reported apart, as an oracle.
    oracle = report["oracle"]["translation_with_optical"]
    assert oracle["definition"].startswith("ORACLE") and np.isfinite(oracle["psnr"])
    assert not any("with_optical" in k for k in report["translation"])
    text = result.output
    assert text.index("translation:") < text.index("oracle (its input holds the target")
    assert "model_with_optical" in report["predictors"]  # segmentation with the prior
    # Chips larger than the window: both paths blended, image and prior normalised alike.
    windowed = evaluate_run(
        flora_run.path, split="test", window=32, overlap=8, resamples=20, overwrite=True
    )
    assert "blended windows" in windowed["evaluation"]["prediction"]
    assert np.isfinite(windowed["oracle"]["translation_with_optical"]["psnr"])
    assert set(windowed["predictors"]) == set(report["predictors"])


def test_the_dataset_reads_whole_chips_only_for_evaluation(resunet_run: RunDir) -> None:
    spec = resunet_run.read_spec()
    crop = FloodDataset(spec.data, "val", train=False)[0]
    whole = FloodDataset(spec.data, "val", train=False, whole_chip=True, normalized=False)[0]
    assert crop["image"].shape[-2:] == (32, 32) and whole["image"].shape[-2:] == (64, 64)
    np.testing.assert_array_equal(whole["mask"][16:48, 16:48], crop["mask"])  # centred crop
    with pytest.raises(ValueError, match="training draws patch_size crops"):
        FloodDataset(spec.data, "train", train=True, whole_chip=True)
