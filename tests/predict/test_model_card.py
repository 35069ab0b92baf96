"""Model cards: what `floodlab evaluate` and `floodlab export` write beside their outputs
names the run's own data, bands, normalisation, recipe and scores beside the baselines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.data.load.normalize import saved_coefficients
from floodlab.data.load.store import open_store
from floodlab.predict.evaluate import evaluate_run
from floodlab.specs import load_spec
from floodlab.tracking import RunDir

WriteRun = Callable[..., RunDir]
ROOT = Path(__file__).resolve().parents[2]
BANDS = ["VV", "RATIO", "MAGNITUDE"]


@pytest.fixture(scope="module")
def run(
    tiny_s1f11_store: Path,
    tmp_path_factory: pytest.TempPathFactory,
    untrained_resunet: Callable[..., RunDir],
) -> RunDir:
    return untrained_resunet(
        tmp_path_factory.mktemp("runs"), tiny_s1f11_store, "trainer.epochs=7", "optim.lr=0.003"
    )


@pytest.fixture(scope="module")
def evaluated(run: RunDir) -> dict[str, Any]:
    return evaluate_run(run.path, resamples=50)


def section(card: str, heading: str) -> str:
    """The text of one ``## heading`` section."""
    assert f"\n## {heading}\n" in card, heading
    return card.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def check_run_facts(card: str, run: RunDir) -> None:
    """What every card of `run` says about its data, bands, normalisation and recipe."""
    assert card.splitlines()[0] == f"<!-- floodlab model card; run: {run.path} -->"
    assert "# Model card: resunet_sen1floods11 / r" in card
    assert f"spec hash `{run.spec_hash()}`" in card

    data = section(card, "Data and splits")
    store = open_store(Path(data.split("Store: `", 1)[1].split("`", 1)[0]))
    for split, role in (("train", "training"), ("val", "validation"), ("test", "test")):
        n = len(store.split_indices(split))
        assert f"| {split} | {n} | {role} |" in data
    assert "Sen1Floods11" in data and "**Synthetic data**" in data
    assert "Labels trained on: hand, weak" in data

    bands = section(card, "Bands and units")
    assert "| 1 | VV | dB | - |" in bands
    assert "| 2 | RATIO | unitless (ratio of dB values) |" in bands
    assert "| 3 | MAGNITUDE | dB |" in bands

    norm = section(card, "Normalisation")
    assert "Mode `zscore`" in norm
    params = run.read_normalization()
    for band, c in zip(BANDS, saved_coefficients(params, "image", BANDS), strict=True):
        assert f"x * {c['scale']:.6g} + {c['offset']:.6g}" in norm.split(f"| {band} |")[1]

    recipe = section(card, "Training recipe")
    assert "Family: `resunet`" in recipe and "widths: [8, 16]" in recipe
    assert "Optimiser: adam, lr 0.003" in recipe
    assert "Epochs: 7 planned" in recipe and "checkpoint of epoch 1" in recipe
    assert "32x32 px patches" in recipe and "Seed 42" in recipe

    use = section(card, "Intended use")
    assert "flood water from VV, RATIO, MAGNITUDE" in use
    limits = section(card, "Known limits")
    assert "Trained on synthetic data" in limits
    assert "C-band SAR misses water" in limits


def test_evaluate_writes_a_model_card_with_scores_beside_baselines(
    run: RunDir, evaluated: dict[str, Any]
) -> None:
    path = Path(evaluated["files"]["model_card"])
    assert path == run.eval_dir("test") / "model_card.md"
    card = path.read_text()
    check_run_facts(card, run)
    ev = section(card, "Evaluation")
    assert f"Split `test` of `{evaluated['store']}`: {evaluated['images']} whole chips" in ev
    assert "labels hand+weak, threshold 0.5" in ev
    for name in ("model", "otsu", "all_water"):
        m = evaluated["predictors"][name]
        row = next(line for line in ev.splitlines() if line.startswith(f"| {name} |"))
        assert f"{m['iou']:.3f} [" in row and f"{m['mean_image_iou']:.3f}" in row
        pixels = m["tp"] + m["fp"] + m["fn"] + m["tn"]
        assert row.endswith(f"| {pixels:,} |")
    ece = evaluated["calibration"]["model"]["ece"]
    assert f"Calibration of model: ECE {ece:.3f}" in ev
    assert f"Evaluated on {evaluated['images']} images only" in section(card, "Known limits")
    assert "## Exported model" not in card


def test_export_writes_a_model_card_with_the_exported_model(
    run: RunDir, evaluated: dict[str, Any], tmp_path: Path
) -> None:
    model = tmp_path / "flood.pt"
    args = ["export", str(run.path), "--format", "torchscript", "-o", str(model)]
    result = CliRunner().invoke(main, [*args, "--threshold", "0.4"])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "model_card.md").read_text()
    assert str(tmp_path / "model_card.md") in result.output
    check_run_facts(card, run)
    ev = section(card, "Evaluation")  # the run's evaluation of its test split
    otsu = evaluated["predictors"]["otsu"]
    assert "Split `test`" in ev and f"| otsu | {otsu['mean_image_iou']:.3f}" in ev
    exported = section(card, "Exported model")
    assert "File: `flood.pt` (torchscript), sidecar `flood.pt.json`" in exported
    assert "bands VV, RATIO, MAGNITUDE in physical units" in exported
    assert "Threshold: water where `prob` >= 0.4" in exported
    # The same run's card is regenerated by a second export into the folder.
    again = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "flood2.pt")])
    assert again.exit_code == 0, again.output
    assert "File: `flood2.pt`" in (tmp_path / "model_card.md").read_text()


def test_card_of_an_unevaluated_run_says_so(
    tiny_s1f11_store: Path, tmp_path: Path, untrained_run: WriteRun
) -> None:
    spec = load_spec(
        ROOT / "experiments" / "resunet_sen1floods11.yaml",
        [f"data.store={tiny_s1f11_store}", "model.widths=[8,16]", "model.se_reduction=4"],
    )
    fresh = untrained_run(tmp_path / "runs", spec)
    out = tmp_path / "out" / "m.pt"
    result = CliRunner().invoke(
        main, ["export", str(fresh.path), "--format", "torchscript", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    card = (out.parent / "model_card.md").read_text()
    assert "Not evaluated yet" in section(card, "Evaluation")
    assert "Epochs: 80 planned" in section(card, "Training recipe")
