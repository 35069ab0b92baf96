"""ASHA's cuts are recorded, and a cut that could not tell the trials apart is reported."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from floodlab.tune.monitor import PruningASHA


def _sweep(values: list[float]) -> tuple[PruningASHA, list[str]]:
    """Four trials reporting `values[i]` at epochs 1 and 2 (grace period 2, 8 epochs)."""
    asha = PruningASHA(
        noise=0.005,
        time_attr="epoch",
        metric="val/iou",
        mode="max",
        max_t=8,
        grace_period=2,
        reduction_factor=2,
    )
    trials = [SimpleNamespace(trial_id=f"t{i}", config={}) for i in range(len(values))]
    for t in trials:
        asha.on_trial_add(None, t)
    decisions = []
    for epoch in (1, 2):
        for t, value in zip(trials, values, strict=True):
            decisions.append(asha.on_trial_result(None, t, {"epoch": epoch, "val/iou": value}))
    return asha, decisions


def test_a_cut_among_trials_within_noise_is_a_coin_toss(caplog: pytest.LogCaptureFixture) -> None:
    # All four trials still predict water everywhere: IoU 0.200 to 0.197.
    with caplog.at_level(logging.WARNING, logger="floodlab.tune.monitor"):
        asha, _ = _sweep([0.200, 0.199, 0.198, 0.197])
    assert asha.pruned and set(asha.coin_tosses) == asha.pruned
    assert set(asha.coin_tosses.values()) == {2}
    assert "the cut is a coin toss" in caplog.text
    assert "raise tune.scheduler.grace_period (now 2)" in caplog.text


def test_a_cut_between_trials_that_differ_is_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="floodlab.tune.monitor"):
        asha, _ = _sweep([0.60, 0.45, 0.30, 0.20])
    assert asha.pruned and not asha.coin_tosses
    assert "coin toss" not in caplog.text


def test_a_scheduler_pickled_before_the_noise_check_resumes() -> None:
    asha, _ = _sweep([0.6, 0.5, 0.4, 0.3])
    state = dict(asha.__dict__)
    for name in ("noise", "seen", "coin_tosses", "grace_period"):
        state.pop(name)
    old = PruningASHA.__new__(PruningASHA)
    old.__setstate__(state)
    old.on_trial_result(None, SimpleNamespace(trial_id="t0"), {"epoch": 3, "val/iou": 0.6})
    assert old.seen[3] == {"t0": 0.6} and old.pruned == asha.pruned
