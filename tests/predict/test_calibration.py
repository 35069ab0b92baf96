"""Calibration of predicted probabilities: binned counts, ECE, the reliability diagram, and
what `floodlab evaluate` reports of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from floodlab.predict.calibration import ECE, CalibrationCounts, write_reliability
from floodlab.predict.evaluate import evaluate_run
from floodlab.tracking import RunDir

PNG = b"\x89PNG\r\n\x1a\n"
N = 400_000


def bernoulli(p: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(p.shape) < p


def counts_of(prob: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> dict:
    c = CalibrationCounts()
    c.add(prob, truth, np.ones(prob.shape, bool) if valid is None else valid)
    return c.report()


def test_perfectly_calibrated_probabilities_have_ece_near_zero() -> None:
    p = np.random.default_rng(0).random((4, 100, 1000))  # any shape
    report = counts_of(p, bernoulli(p, 1))
    assert report["pixels"] == p.size and sum(report["count"]) == p.size
    assert report[ECE] < 0.01
    # Every bin's observed frequency is close to its mean probability, near its centre.
    for k, (conf, freq) in enumerate(
        zip(report["mean_probability"], report["observed_frequency"], strict=True)
    ):
        assert conf == pytest.approx((k + 0.5) / 10, abs=0.005)
        assert freq == pytest.approx(conf, abs=0.01)


def test_overconfident_probabilities_have_a_large_ece() -> None:
    # True probabilities in [0.25, 0.75], predicted twice as far from 0.5: the gap is
    # |p - 0.5| on average, 0.125.
    p = 0.25 + 0.5 * np.random.default_rng(2).random(N)
    truth = bernoulli(p, 3)
    overconfident = np.clip(0.5 + 2.0 * (p - 0.5), 0.0, 1.0)
    assert counts_of(p, truth)[ECE] < 0.01
    assert counts_of(overconfident, truth)[ECE] == pytest.approx(0.125, abs=0.01)
    # Always certain and wrong half the time.
    certain = (p > 0.5).astype(np.float64)
    assert counts_of(certain, bernoulli(np.full(N, 0.5), 4))[ECE] == pytest.approx(0.5, abs=0.01)


def test_invalid_pixels_are_ignored() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(N)
    truth = bernoulli(p, 6)
    valid = rng.random(N) < 0.7
    # Invalid pixels hold confident mistakes and even NaN: none of it may count.
    p_bad = np.where(valid, p, np.where(rng.random(N) < 0.5, np.nan, 0.99))
    truth_bad = np.where(valid, truth, False)
    got = counts_of(p_bad, truth_bad, valid)
    assert got == counts_of(p[valid], truth[valid])
    assert got["pixels"] == int(valid.sum()) and got[ECE] < 0.01
    # A 0/1 mask (as stored) means the same as a boolean one.
    assert counts_of(p_bad, truth_bad, valid.astype(np.uint8)) == got


def test_counts_add_up_over_batches_and_edges() -> None:
    c = CalibrationCounts()
    c.add(np.array([0.0, 0.05, 0.1, 0.999, 1.0]), np.array([0, 0, 1, 1, 1], bool), np.ones(5, bool))
    c.add(np.array([[0.55]]), np.array([[True]]), np.array([[True]]))
    r = c.report()
    assert r["count"] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]  # 1.0 is in the last bin
    assert r["positive"] == [0, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert r["mean_probability"][2] is None and r["observed_frequency"][2] is None
    assert r["bin_edges"][0] == 0.0 and r["bin_edges"][-1] == 1.0 and len(r["bin_edges"]) == 11
    gaps = [0.025, 1 - 0.1, 1 - 0.55, 1 - 0.9995]
    assert r[ECE] == pytest.approx((2 * gaps[0] + gaps[1] + gaps[2] + 2 * gaps[3]) / 6)
    assert CalibrationCounts().report()[ECE] is None  # nothing counted: no ECE


def test_write_reliability_writes_a_png(tmp_path: Path) -> None:
    p = np.random.default_rng(7).random(10_000)
    calibration = {"model": counts_of(p, bernoulli(p, 8)), "empty": CalibrationCounts().report()}
    path = write_reliability(tmp_path / "reliability.png", calibration, "test split")
    assert path == tmp_path / "reliability.png"
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5_000


@pytest.fixture(scope="module")
def evaluated(
    tiny_s1f11_store: Path,
    tmp_path_factory: pytest.TempPathFactory,
    untrained_resunet: Callable[..., RunDir],
) -> tuple[RunDir, dict]:
    run = untrained_resunet(tmp_path_factory.mktemp("runs"), tiny_s1f11_store)
    return run, evaluate_run(run.path, resamples=50)


def test_evaluate_writes_the_reliability_diagram_and_reports_ece(
    evaluated: tuple[RunDir, dict],
) -> None:
    run, report = evaluated
    out = run.eval_dir("test")
    assert Path(report["files"]["reliability"]) == out / "reliability.png"
    assert (out / "reliability.png").read_bytes().startswith(PNG)
    saved = json.loads((out / "metrics.json").read_text())
    cal = saved["calibration"]["model"]
    assert 0.0 <= cal[ECE] <= 1.0 and "expected calibration error" in saved["definitions"][ECE]
    # Counted over exactly the valid pixels the model is scored on.
    model = saved["predictors"]["model"]
    assert cal["pixels"] == sum(model[k] for k in ("tp", "fp", "fn", "tn")) > 0
    # Pixels at or above 0.5 (the threshold) are the ones predicted water.
    assert sum(cal["count"][5:]) == model["tp"] + model["fp"]
    assert sum(cal["positive"]) == model["tp"] + model["fn"]
