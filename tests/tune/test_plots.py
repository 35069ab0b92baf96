"""history.png and importance.png of a sweep, from trial records as export_results gets them."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from floodlab.specs import load_spec
from floodlab.specs.tune import TuneSpec
from floodlab.tune import results as res
from floodlab.tune.plots import (
    HISTORY_PNG,
    IMPORTANCE_PNG,
    optimisation_history,
    param_importances,
    write_sweep_plots,
)

from .conftest import EXPERIMENTS, space

SPACE = {
    "loss.seg.dice": {"type": "float", "low": 0.2, "high": 2.0},
    "loss.rec.ssim": {"type": "float", "low": 0.0, "high": 1.0},
    "model.fusion.film": {"type": "categorical", "choices": [True, False]},
}


def tune_of(*overrides: str) -> TuneSpec:
    spec = load_spec(EXPERIMENTS / "sweep_flora.yaml", [space(SPACE), *overrides])
    assert spec.tune is not None
    return spec.tune


def assert_png(path: Path) -> None:
    with Image.open(path) as img:
        assert img.format == "PNG" and min(img.size) > 100
        pixels = np.asarray(img.convert("L"))
    assert pixels.min() < pixels.max()


def make_trials(
    sweep_dir: Path, rows: list[tuple[str, str, float, float, dict[str, Any]]]
) -> list[res.TrialRecord]:
    """Trial records plus each trial's metrics.jsonl (its last record's timestamp is when it
    finished), as a sweep leaves them: rows of (id, status, finished_at, val/iou, params)."""
    records = []
    for trial_id, status, finished, iou, params in rows:
        run = sweep_dir / res.TRIALS_DIR / trial_id
        run.mkdir(parents=True)
        lines = [{"epoch": 1, "val/iou": iou, "timestamp": finished}]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        final = {} if status == res.ERROR else {"val/iou": iou, "val/loss": 1 - iou}
        records.append(
            res.TrialRecord(
                trial_id=trial_id,
                status=status,
                params=params,
                final=final,
                epochs=1,
                run_dir=f"{res.TRIALS_DIR}/{trial_id}",
            )
        )
    return records


def params(dice: float, ssim: float, film: bool) -> dict[str, Any]:
    return {"loss.seg.dice": dice, "loss.rec.ssim": ssim, "model.fusion.film": film}


def eight_trials(sweep_dir: Path) -> list[res.TrialRecord]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        dice, ssim = float(rng.uniform(0.2, 2.0)), float(rng.uniform(0, 1))
        iou = 0.3 + 0.3 * (dice - 0.2) / 1.8 + 0.02 * ssim
        # Trial ids sort the other way round from the order the trials finished.
        status = res.PRUNED if i == 3 else res.TERMINATED
        rows.append((f"t{7 - i}", status, 1000.0 + i, iou, params(dice, ssim, i % 2 == 0)))
    rows.append(("t8", res.ERROR, 2000.0, math.nan, params(1.0, 0.5, True)))
    return make_trials(sweep_dir, rows)


def test_history_and_importance_pictures_of_a_finished_sweep(tmp_path: Path) -> None:
    tune = tune_of()
    records = eight_trials(tmp_path)
    out = write_sweep_plots(tmp_path, records, tune, title="flora sweep-1")
    assert out == {
        "history_png": HISTORY_PNG,
        "importance_png": IMPORTANCE_PNG,
        "importance_note": "",
    }
    assert_png(tmp_path / HISTORY_PNG)
    assert_png(tmp_path / IMPORTANCE_PNG)

    (history,) = optimisation_history(tmp_path, records, tune)
    # In the order the trials finished (not by id), errored trials left out.
    assert history.trial_ids == [f"t{7 - i}" for i in range(8)]
    assert history.best == list(np.maximum.accumulate(history.values))
    importances, note = param_importances(records, tune)
    assert note == ""
    assert set(importances["val/iou"]) == set(SPACE)
    assert all(v >= 0 for v in importances["val/iou"].values())
    assert sum(importances["val/iou"].values()) == pytest.approx(1.0)


def test_a_minimised_objective_keeps_the_running_minimum(tmp_path: Path) -> None:
    tune = tune_of("tune.objectives=[{metric: val/loss, mode: min}]")
    records = eight_trials(tmp_path)
    (history,) = optimisation_history(tmp_path, records, tune)
    assert history.metric == "val/loss"
    assert history.best == list(np.minimum.accumulate(history.values))


def test_too_few_finished_trials_skip_importances_with_a_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = make_trials(
        tmp_path,
        [
            ("a", res.TERMINATED, 1.0, 0.4, params(1.0, 0.5, True)),
            ("b", res.ERROR, 2.0, 0.0, params(0.5, 0.5, False)),
        ],
    )
    with caplog.at_level(logging.INFO, logger="floodlab.tune.plots"):
        out = write_sweep_plots(tmp_path, records, tune_of())
    assert out["history_png"] == HISTORY_PNG and out["importance_png"] is None
    assert "at least 2 finished trials, got 1" in out["importance_note"]
    assert out["importance_note"] in caplog.text
    assert not (tmp_path / IMPORTANCE_PNG).exists()
    assert_png(tmp_path / HISTORY_PNG)


def test_one_shared_parameter_is_too_few_for_importances(tmp_path: Path) -> None:
    # A conditional parameter sampled in only some trials is not shared by all of them.
    records = make_trials(
        tmp_path,
        [
            ("a", res.TERMINATED, 1.0, 0.4, {"loss.seg.dice": 1.0, "loss.rec.ssim": 0.2}),
            ("b", res.TERMINATED, 2.0, 0.5, {"loss.seg.dice": 0.5}),
            ("c", res.TERMINATED, 3.0, 0.6, {"loss.seg.dice": 0.7}),
        ],
    )
    out = write_sweep_plots(tmp_path, records, tune_of())
    assert out["importance_png"] is None
    assert "at least 2 parameters" in out["importance_note"]
    assert out["history_png"] == HISTORY_PNG


def test_no_finished_trial_draws_nothing_and_raises_nothing(tmp_path: Path) -> None:
    records = make_trials(tmp_path, [("a", res.ERROR, 1.0, 0.0, params(1.0, 0.5, True))])
    out = write_sweep_plots(tmp_path, records, tune_of())
    assert out["history_png"] is None and out["importance_png"] is None
    assert out["importance_note"]
    assert not (tmp_path / HISTORY_PNG).exists()


def test_trials_without_metrics_files_still_draw(tmp_path: Path) -> None:
    # A sweep directory copied without its trials' run directories.
    records = eight_trials(tmp_path)
    for r in records:
        (tmp_path / r.run_dir / "metrics.jsonl").unlink()
    out = write_sweep_plots(tmp_path, records, tune_of())
    assert out["history_png"] == HISTORY_PNG and out["importance_png"] == IMPORTANCE_PNG
