"""ASHA's cuts are recorded, and ASHA does not cut a trial the validation set cannot tell
from the trials that go on."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import TrialScheduler

from floodlab.specs import load_spec
from floodlab.tune.monitor import PruningASHA
from floodlab.tune.tuner import build_scheduler, grace_epochs

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


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


def test_no_trial_is_cut_while_all_are_within_noise(caplog: pytest.LogCaptureFixture) -> None:
    # All four trials still predict water everywhere: IoU 0.200 to 0.197. Plain ASHA would
    # stop the last two at epoch 2 on these values; here every one goes on.
    with caplog.at_level(logging.INFO, logger="floodlab.tune.monitor"):
        asha, decisions = _sweep([0.200, 0.199, 0.198, 0.197])
    assert set(decisions) == {TrialScheduler.CONTINUE}
    assert not asha.pruned
    assert asha.deferred == {"t1": [2], "t2": [2], "t3": [2]}
    assert "no signal yet" in caplog.text


def test_trials_that_differ_are_cut() -> None:
    asha, decisions = _sweep([0.60, 0.45, 0.30, 0.20])
    assert decisions[-4:] == [TrialScheduler.CONTINUE] + [TrialScheduler.STOP] * 3
    assert asha.pruned == {"t1", "t2", "t3"} and not asha.deferred


def test_only_the_trial_within_noise_of_the_cutoff_is_kept() -> None:
    # At epoch 2 each trial meets the median of those before it: 0.598 is within noise
    # (0.005) of 0.60; 0.30 and 0.20 are not within it of 0.599 and 0.598.
    asha, _ = _sweep([0.60, 0.598, 0.30, 0.20])
    assert asha.deferred == {"t1": [2]} and asha.pruned == {"t2", "t3"}


def test_a_trial_kept_at_one_rung_is_judged_again_at_the_next() -> None:
    asha, _ = _sweep([0.200, 0.199, 0.198, 0.197])
    trials = [SimpleNamespace(trial_id=f"t{i}", config={}) for i in range(4)]
    later = {0: 0.60, 1: 0.55, 2: 0.50, 3: 0.25}
    decisions = {}
    for epoch in (3, 4):
        for i, t in enumerate(trials):
            decisions[t.trial_id] = asha.on_trial_result(
                None, t, {"epoch": epoch, "val/iou": later[i]}
            )
    assert decisions["t3"] == TrialScheduler.STOP and "t3" in asha.pruned


def test_a_minimised_metric_is_judged_the_right_way_round() -> None:
    asha = PruningASHA(
        noise=0.01,
        time_attr="epoch",
        metric="val/loss",
        mode="min",
        max_t=8,
        grace_period=1,
        reduction_factor=2,
    )
    trials = [SimpleNamespace(trial_id=f"t{i}", config={}) for i in range(3)]
    for t in trials:
        asha.on_trial_add(None, t)
    losses = [0.30, 0.305, 0.90]  # t1 within noise of the best, t2 far worse
    decisions = [
        asha.on_trial_result(None, t, {"epoch": 1, "val/loss": v})
        for t, v in zip(trials, losses, strict=True)
    ]
    assert decisions == [TrialScheduler.CONTINUE, TrialScheduler.CONTINUE, TrialScheduler.STOP]
    assert asha.deferred == {"t1": [1]} and asha.pruned == {"t2"}


def test_a_scheduler_pickled_before_the_noise_check_resumes() -> None:
    asha, _ = _sweep([0.6, 0.5, 0.4, 0.3])
    state = dict(asha.__dict__)
    for name in ("noise", "seen", "deferred", "grace_period"):
        state.pop(name)
    old = PruningASHA.__new__(PruningASHA)
    old.__setstate__(state)
    old.on_trial_result(None, SimpleNamespace(trial_id="t0"), {"epoch": 3, "val/iou": 0.6})
    assert old.seen[3] == {"t0": 0.6} and old.pruned == asha.pruned


@pytest.mark.parametrize(
    ("overrides", "grace"),
    [
        (["tune.scheduler.grace_period=1"], 1),  # stated: kept
        (["tune.scheduler.grace_period=9"], 8),  # never past the last epoch
        (["tune.scheduler.grace_period=null"], 2),  # derived: a quarter of 8 epochs
        (["tune.scheduler.grace_period=null", "schedule.warmup_epochs=3"], 4),  # past warm-up
    ],
)
def test_the_grace_period_comes_from_the_spec(overrides: list[str], grace: int) -> None:
    spec = load_spec(EXPERIMENTS / "sweep_flora.yaml", ["trainer.epochs=8", *overrides])
    assert grace_epochs(spec) == grace
    assert build_scheduler(spec).grace_period == grace
