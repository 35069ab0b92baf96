"""`floodlab evaluate`: reports of a trained run beside the Otsu baseline, and their metrics."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import DataLoader

from floodlab.cli import main
from floodlab.metrics.segmentation import confusion_counts, count_scores
from floodlab.predict.evaluate import evaluate_run
from floodlab.specs import load_spec
from floodlab.tracking import RunDir
from floodlab.tracking.checkpoint import save_checkpoint, write_meta
from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resunet_run(tiny_s1f11_store, tmp_path_factory) -> RunDir:
    """A tiny ResUNet trained for a few steps with the pure loop and saved as a run."""
    from floodlab.data.load.dataset import FloodDataset
    from floodlab.tasks import build_task
    from floodlab.train.loop import fit

    root = tmp_path_factory.mktemp("runs")
    spec = load_spec(
        ROOT / "experiments" / "resunet_sen1floods11.yaml",
        [
            f"data.store={tiny_s1f11_store}",
            f"logging.root={root}",
            "data.patch_size=32",
            "data.loader_workers=0",
            "model.widths=[8,16]",
            "model.se_reduction=4",
            "trainer.epochs=1",
            "trainer.batch_size=4",
            "trainer.limit_train_batches=3",
            "optim.lr=0.01",
        ],
    )
    run = RunDir.create(root, spec.name, "r1", spec=spec)
    train_ds = FloodDataset(spec.data, "train", train=True, seed=0)
    run.write_normalization(train_ds.norm)

    class SaveHooks:
        def on_step(self, *args):
            pass

        def on_epoch_end(self, state, record, *, evaluated, checkpoint, final):
            folder = run.checkpoints_dir / checkpoint_dir_name(state.epoch)
            save_checkpoint(folder / "checkpoint.pt", checkpoint())
            write_meta(folder, {"epoch": state.epoch, "score": record["val/iou"], "mode": "max"})

    torch.manual_seed(0)
    val_ds = FloodDataset(spec.data, "val", train=False)
    fit(
        build_task(spec),
        spec,
        DataLoader(train_ds, batch_size=4, shuffle=True),
        DataLoader(val_ds, batch_size=4),
        hooks=SaveHooks(),
    )
    return run


def test_confusion_and_metrics_follow_validity():
    pred = np.array([[1, 1], [0, 0]], bool)
    truth = np.array([[1, 0], [1, 0]], bool)
    valid = np.array([[1, 1], [1, 0]], bool)  # the bottom-right pixel is missing data
    c = confusion_counts(pred, truth, valid)
    assert c.tolist() == [1, 1, 1, 0]
    m = count_scores(c)
    assert m["iou"] == pytest.approx(1 / 3) and m["f1"] == pytest.approx(0.5)
    assert math.isnan(count_scores([0, 0, 0, 5])["iou"])  # no water anywhere: undefined


def test_evaluate_reports_model_beside_otsu(resunet_run):
    report = evaluate_run(resunet_run.path, split="test")
    out = resunet_run.eval_dir("test")
    assert set(report["predictors"]) == {"model", "otsu", "all_water"}  # no optical prior
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["predictors"]["otsu"]["iou"] == pytest.approx(report["predictors"]["otsu"]["iou"])
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == report["images"] > 0
    # Both predictors are scored on exactly the same valid pixels.
    valid_pixels = sum(int(r["valid_pixels"]) for r in rows)
    for name in ("model", "otsu"):
        p = report["predictors"][name]
        assert p["tp"] + p["fp"] + p["fn"] + p["tn"] == valid_pixels
    matrix = json.loads((out / "confusion_matrix.json").read_text())
    assert matrix["otsu"]["rows_true_cols_pred"][1][1] == report["predictors"]["otsu"]["tp"]
    assert (out / "confusion_matrix.png").stat().st_size > 0
    assert list(out.glob("best_1_*.png")) and list(out.glob("worst_1_*.png"))


def test_evaluate_cli_prints_table_and_paths(resunet_run):
    result = CliRunner().invoke(
        main, ["evaluate", str(resunet_run.path), "--split", "val", "--checkpoint", "latest"]
    )
    assert result.exit_code == 0, result.output
    assert "otsu" in result.output and "per_image.csv" in result.output


def test_evaluate_unknown_run_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "nope/latest", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "not found" in result.output and "Traceback" not in result.output


def test_evaluate_never_replaces_earlier_reports_silently(resunet_run, tiny_s1f11_store):
    first = evaluate_run(resunet_run.path, split="train")
    written = Path(first["files"]["metrics"]).read_text()
    result = CliRunner().invoke(main, ["evaluate", str(resunet_run.path), "--split", "train"])
    assert result.exit_code == 2 and "--overwrite" in result.output, result.output
    assert Path(first["files"]["metrics"]).read_text() == written
    # Another store's reports go beside the run's own, never over them.
    other = evaluate_run(resunet_run.path, split="train", store=str(tiny_s1f11_store))
    assert Path(other["files"]["metrics"]).parent.name == f"train-on-{tiny_s1f11_store.stem}"
    again = ["evaluate", str(resunet_run.path), "--split", "train", "--overwrite"]
    assert CliRunner().invoke(main, again).exit_code == 0


def test_evaluate_with_tta_reports_beside_the_plain_evaluation(resunet_run):
    plain = evaluate_run(resunet_run.path, split="val", overwrite=True)
    tta = evaluate_run(resunet_run.path, split="val", tta="flips")
    out = resunet_run.eval_dir("val", tta="flips")
    assert out.name == "val-tta-flips" and (out / "metrics.json").is_file()
    assert (resunet_run.eval_dir("val") / "metrics.json").is_file()  # the plain one is kept
    info = tta["evaluation"]
    assert (info["tta"], info["tta_passes"]) == ("flips", 4)
    assert "averaged over 4 flipped and turned copies" in (out / "model_card.md").read_text()
    # Same chips, same pixels, same baselines; only the model's own predictions change.
    assert tta["images"] == plain["images"]
    for name in ("otsu", "all_water"):
        assert tta["predictors"][name] == plain["predictors"][name]
    m, p = tta["predictors"]["model"], plain["predictors"]["model"]
    assert sum(m[k] for k in ("tp", "fp", "fn", "tn")) == sum(
        p[k] for k in ("tp", "fp", "fn", "tn")
    )
    refused = CliRunner().invoke(main, ["evaluate", str(resunet_run.path), "--tta", "spin"])
    assert refused.exit_code == 2 and "--tta" in refused.output


def test_evaluate_chooses_the_threshold_on_the_validation_split(resunet_run):
    report = evaluate_run(resunet_run.path, split="test", threshold="val")
    choice = report["threshold_choice"]
    assert choice["split"] == "val" and report["threshold"] == choice["chosen"]
    out = resunet_run.eval_dir("test", threshold="val")
    assert out.name == "test-threshold-val" and (out / "metrics.json").is_file()
    scores = dict(zip(choice["grid"], choice["scores"], strict=True))
    assert scores[choice["chosen"]] == max(s for s in scores.values() if s is not None)
    # The search scores what evaluate scores: the validation split at the chosen threshold.
    on_val = evaluate_run(resunet_run.path, split="val", threshold=choice["chosen"])
    assert on_val["predictors"]["model"]["mean_image_iou"] == pytest.approx(
        scores[choice["chosen"]], abs=1e-5
    )
    assert (
        f"was chosen on split `val` ({choice['images']} chips)"
        in (out / "model_card.md").read_text()
    )


def test_evaluate_cli_says_where_the_threshold_was_chosen(resunet_run):
    result = CliRunner().invoke(
        main, ["evaluate", str(resunet_run.path), "--threshold", "val", "--overwrite"]
    )
    assert result.exit_code == 0, result.output
    assert "chosen on split 'val'" in result.output and "test-threshold-val" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split", "val", "--threshold", "val"], "flatters the model"),
        (["--threshold", "1.5"], "--threshold: a probability in [0, 1]"),
    ],
)
def test_evaluate_refuses_a_threshold_it_cannot_use(resunet_run, args, message):
    result = CliRunner().invoke(main, ["evaluate", str(resunet_run.path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def _copy_run(run: RunDir, name: str, edit) -> Path:
    """A copy of `run` under another experiment name, its test rows passed through `edit`."""
    import shutil

    copy = run.path.parent.parent / name / run.path.name
    shutil.copytree(run.path, copy)
    path = copy / "eval" / "test" / "per_image.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    rows = edit(rows)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return copy


def test_compare_gives_the_paired_difference_evaluate_gives_in_one_run(resunet_run):
    """Run B is run A whose model predicted all water on every chip: A - B must be the
    model - all_water difference `evaluate` reported inside run A (same chips, same
    resamples), and a missing report or other chips are refused with exit code 2."""
    report = evaluate_run(resunet_run.path, split="test", overwrite=True)

    def all_water(rows):
        for r in rows:
            for k in ("tp", "fp", "fn", "tn"):
                r[f"{k}_model"] = r[f"{k}_all_water"]
        return rows

    b = _copy_run(resunet_run, "as_all_water", all_water)
    result = CliRunner().invoke(main, ["compare", str(resunet_run.path), str(b), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    (pair,) = out["difference"].values()
    expected = report["differences"]["model - all_water"]
    for key in ("mean_image_iou", "iou"):
        assert pair[key]["value"] == pytest.approx(expected[key]["value"])
        assert pair[key]["ci95"] == pytest.approx(expected[key]["ci95"])
    assert pair["images_better"] == pytest.approx(expected["images_better"])
    assert out["chips"] == report["images"]
    table = CliRunner().invoke(main, ["compare", str(resunet_run.path), str(b)])
    assert table.exit_code == 0 and "better on" in table.output, table.output

    fewer = _copy_run(resunet_run, "fewer_chips", lambda rows: rows[1:])
    missing = CliRunner().invoke(main, ["compare", str(resunet_run.path), str(fewer)])
    assert missing.exit_code == 2 and "different chips" in missing.output, missing.output
    unevaluated = CliRunner().invoke(
        main, ["compare", str(resunet_run.path), str(b), "--split", "val", "--threshold", "0.37"]
    )
    assert unevaluated.exit_code == 2, unevaluated.output
    assert "floodlab evaluate" in unevaluated.output and "Traceback" not in unevaluated.output
