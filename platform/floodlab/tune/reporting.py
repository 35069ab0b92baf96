"""What a sweep trial hands Tune each epoch, whichever way its run trains.

A trial drives its run through Ray Train (`floodlab.tune.callbacks.SweepReportCallback`
forwards rank 0's reports) or, with one worker, trains in its own process
(`TrialReporter`, called by the loop hooks). Both fill in the metrics the sweep needs.
"""

from __future__ import annotations

import math
from typing import Any


class RequiredMetrics:
    """Every result with the metrics the sweep optimises and prunes on.

    Epochs without validation (``trainer.eval_every`` > 1) carry the last validated value
    of each required metric; a metric the run never reports is sent as NaN (the trial is then
    failed with a clear message when training ends) instead of stopping the whole sweep.

    Args:
        required: metrics every result must hold (objectives and the pruning metric).
    """

    def __init__(self, required: list[str]):
        self.required = list(required)
        self.last: dict[str, float] = {}

    def fill(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """`metrics` with every required metric present."""
        out = dict(metrics)
        for key in self.required:
            if key in out:
                self.last[key] = out[key]
            else:
                out[key] = self.last.get(key, math.nan)
        return out


class TrialReporter(RequiredMetrics):
    """Reports an in-trial run's epochs to Tune from the trial's own process.

    Tune may stop the trial at any report (ASHA), so the loop hooks call it last in an epoch,
    once the epoch's files are written.
    """

    def __call__(self, metrics: dict[str, Any]) -> None:
        import ray.tune

        ray.tune.report(self.fill(metrics))
