"""Tune-side bookkeeping of a sweep: which trials ASHA pruned, trials.csv and the trials'
MLflow runs as trials end, progress."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from floodlab.io import atomic_write_text
from floodlab.specs.tune import TuneSpec
from floodlab.tracking.sweepdir import SweepDir
from floodlab.tune import results as res
from floodlab.tune.export import SweepProgress
from floodlab.tune.trial import trial_record

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from floodlab.tune.export import SweepProgress

logger = logging.getLogger(__name__)


class PruningASHA(AsyncHyperBandScheduler):
    """ASHA that cuts only on signal, and remembers which trials it stopped early.

    Tune marks pruned and completed trials alike as TERMINATED; trials.csv tells them apart.
    ASHA stops a trial whose metric at a rung is below the rung's cutoff (a quantile of the
    trials recorded there before it). When the trial lies within `noise` of that cutoff (all
    trials still predicting one class, say) the validation set cannot tell it from the trials
    that go on, and the cut would be a coin toss: the trial is kept instead and judged again
    at the next rung (at the last epoch it simply ends). Such deferrals are logged and kept in
    `deferred`.

    Args:
        noise: differences of the pruning metric up to this are not a signal.
        **kwargs: `AsyncHyperBandScheduler`'s arguments.
    """

    def __init__(self, noise: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.noise = noise
        self.grace_period = int(kwargs.get("grace_period", 1))
        self.pruned: set[str] = set()
        # epoch -> trial id -> the pruning metric the trial reported at that epoch.
        self.seen: dict[int, dict[str, float]] = {}
        self.deferred: dict[str, list[int]] = {}  # trial id -> epochs of cuts without signal

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A scheduler pickled by an older floodlab (a sweep resumed) gets the new fields."""
        state.setdefault("noise", 0.0)
        state.setdefault("grace_period", 1)
        state.setdefault("seen", {})
        state.setdefault("deferred", {})
        state.pop("coin_tosses", None)
        self.__dict__.update(state)

    def _margin(self, trial: Trial, epoch: int) -> float | None:
        """How far (in the metric's units, positive = worse) `trial` lies below the cutoff of
        the rung it has just been judged at; None when no rung judged it at `epoch`."""
        bracket = self._trial_info.get(trial.trial_id)
        if bracket is None:
            return None
        for milestone, recorded in bracket._rungs:  # highest milestone first
            if milestone <= epoch and trial.trial_id in recorded:
                others = {k: v for k, v in recorded.items() if k != trial.trial_id}
                cutoff = bracket.cutoff(others)
                if cutoff is None:
                    return None
                return float(cutoff - recorded[trial.trial_id])  # both signed: larger is better
        return None

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        """ASHA's decision, kept from cutting within noise; a STOP before `max_t` epochs is
        recorded as pruning."""
        decision = super().on_trial_result(tune_controller, trial, result)
        epoch = result.get(self._time_attr)
        value = result.get(self._metric) if self._metric else None
        if epoch is None or value is None:
            return decision
        peers = self.seen.setdefault(int(epoch), {})
        peers[trial.trial_id] = float(value)
        if decision != TrialScheduler.STOP or epoch >= self._max_t:
            return decision
        margin = self._margin(trial, int(epoch))
        if margin is not None and margin <= self.noise:
            self.deferred.setdefault(trial.trial_id, []).append(int(epoch))
            logger.info(
                "ASHA would stop trial %s at epoch %d, but its %s (%.4f) lies within %.3g of "
                "the rung's cutoff (noise %.3g): no signal yet, so it goes on to the next rung.",
                trial.trial_id,
                epoch,
                self._metric,
                value,
                margin,
                self.noise,
            )
            return TrialScheduler.CONTINUE
        self.pruned.add(trial.trial_id)
        return decision


@dataclass
class SweepSession:
    """Live, unpickled state of one `run_sweep` call (progress listener, final trials)."""

    progress: Callable[[SweepProgress], None] | None = None
    started: list[str] = field(default_factory=list)
    final_trials: list[Trial] = field(default_factory=list)
    monitor: SweepMonitor | None = None


# Sweep directory -> its running session. Tune pickles its callbacks with the experiment
# (so a resumed sweep gets its monitor back); what must not be pickled lives here.
SESSIONS: dict[str, SweepSession] = {}


class SweepMonitor(Callback):
    """Keeps trials.csv current as trials end, tells the session about progress, and keeps
    (in Tune's experiment state, so across resumes) which trials completed or were pruned.

    Args:
        sweep_dir: the sweep directory, or its URL on object storage.
        tune_data: the sweep's `tune` section as plain data.
        scheduler: the sweep's scheduler when it is a `PruningASHA`.
    """

    def __init__(self, sweep_dir: str, tune_data: dict[str, Any], scheduler: Any = None):
        self.sweep_dir = sweep_dir
        self.tune_data = tune_data
        self.scheduler = scheduler if isinstance(scheduler, PruningASHA) else None
        self.completed: set[str] = set()
        self._pruned: set[str] = set()
        self._releasing: set[str] = set()
        self._redraw: set[str] = set()  # cut-short trials whose curves.png is drawn once released

    # -- state kept by Tune ---------------------------------------------------------------
    def get_state(self) -> dict[str, Any] | None:
        """The ids of completed and pruned trials."""
        return {"completed": sorted(self.completed), "pruned": sorted(self.pruned)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the ids saved by `get_state`."""
        self.completed = set(state.get("completed", []))
        self._pruned = set(state.get("pruned", []))
        if self.scheduler is not None:
            self.scheduler.pruned |= self._pruned

    @property
    def pruned(self) -> set[str]:
        """Trials the scheduler stopped early (this run and before a resume)."""
        return self._pruned | (self.scheduler.pruned if self.scheduler else set())

    @property
    def folder(self) -> SweepDir:
        """The sweep directory (on object storage: through its working copy)."""
        return SweepDir(self.sweep_dir)

    @property
    def tune(self) -> TuneSpec:
        """The sweep's `tune` section."""
        return TuneSpec.model_validate(self.tune_data)

    def record(self, trial: Trial, tune: TuneSpec | None = None) -> res.TrialRecord:
        """The trials.csv record of one trial."""
        return trial_record(
            trial,
            tune or self.tune,
            self.folder.path,
            completed=self.completed,
            pruned=self.pruned,
        )

    # -- Tune hooks ---------------------------------------------------------------------
    def _session(self) -> SweepSession | None:
        session = SESSIONS.get(self.sweep_dir)
        if session is not None:
            session.monitor = self
        return session

    def _notify(self, trials: list[Trial], event: str, trial: Trial) -> None:
        session = self._session()
        if session is None or session.progress is None:
            return
        tune = self.tune
        records = [self.record(t, tune) for t in trials]
        best = res.select_best(records, tune)
        metric = tune.objectives[0].metric
        counts = res.status_counts(records)
        session.progress(
            SweepProgress(
                total=tune.num_trials,
                finished=sum(counts.get(s, 0) for s in res.FINISHED),
                running=counts.get(res.RUNNING, 0),
                errored=counts.get(res.ERROR, 0),
                pruned=counts.get(res.PRUNED, 0),
                event=event,
                trial_id=trial.trial_id,
                best_trial=best.trial_id if best else None,
                best_value=best.final.get(metric) if best else None,
                metric=metric,
            )
        )

    def _add_hparams_session(self, trial: Trial, status: str) -> None:
        """Give a trial that stopped before its last epoch its HParams session.

        A run writes its session at its last epoch; without this, trials the scheduler
        pruned (or that failed midway) would be missing from the HParams dashboard.
        """
        from floodlab.specs import spec_to_dict
        from floodlab.specs.paths import get_path
        from floodlab.tune.hparams import has_session, write_trial_session

        run = SweepDir(self.sweep_dir).trial(trial.trial_id)
        try:
            if not run.spec_path.is_file() or not run.tensorboard_dir.is_dir():
                return  # never started, or TensorBoard is off
            if has_session(run.tensorboard_dir):
                return
            data = spec_to_dict(run.read_spec())
            hparams = {path: get_path(data, path) for path in self.tune.space}
            write_trial_session(run.tensorboard_dir, hparams, status)
            run.push()
        except Exception:  # TensorBoard extras must never stop a sweep
            logger.warning(
                "could not record the HParams of trial %s", trial.trial_id, exc_info=True
            )

    def _write_csv(self, trials: list[Trial]) -> None:
        tune = self.tune
        records = res.ranked([self.record(t, tune) for t in trials], tune)
        folder = self.folder
        atomic_write_text(folder.path / res.TRIALS_CSV, res.trials_csv_text(records, tune))
        folder.push([res.TRIALS_CSV])

    def _release(self, trial_ids: set[str]) -> set[str]:
        """Free the worker resources of ended trials; the ids still shutting down."""
        from floodlab.tune.callbacks import release_stopped_run

        waiting = set()
        for trial_id in trial_ids:
            try:
                if not release_stopped_run(SweepDir(self.sweep_dir).trial(trial_id).path):
                    waiting.add(trial_id)
                elif trial_id in self._redraw:  # its workers are gone: nothing draws after this
                    self._redraw.discard(trial_id)
                    self._finish_curves(trial_id)
            except Exception:  # never let bookkeeping stop the sweep
                logger.warning("could not release trial %s's resources", trial_id, exc_info=True)
        return waiting

    def _finish_curves(self, trial_id: str) -> None:
        """Draw curves.png of a trial that the scheduler stopped or that failed, once its
        workers are gone: rank 0 draws in the background
        (`floodlab.tracking.curves.CurvesPainter`) and completes the picture only when a
        run reaches its last epoch, so a trial cut short may have missed its last epochs."""
        from floodlab.tracking.curves import plot_curves

        run = SweepDir(self.sweep_dir).trial(trial_id)
        try:
            records = run.read_metrics(from_home=run.home is not None)
            if records:
                plot_curves(records, run.curves_path, title=run.name)
                run.push([run.curves_path.name])
        except Exception:  # a picture must never stop a sweep
            logger.warning("could not draw trial %s's curves", trial_id, exc_info=True)

    def _end_child_run(self, trial: Trial, status: str, outcome: str) -> None:
        """End a trial's child MLflow run (FINISHED, FAILED or KILLED) with its summary and
        curves; `outcome` (completed, pruned, failed, interrupted) becomes a tag."""
        from floodlab.tracking.mlflow_runs import MlflowSink, end_run

        run = SweepDir(self.sweep_dir).trial(trial.trial_id)
        sink = MlflowSink.of(run.path)
        if sink is not None:
            sink.set_tags({"floodlab.outcome": outcome})
            end_run(sink, run, status)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Release the workers of trials that ended since the last step."""
        if self._releasing:
            self._releasing = self._release(self._releasing)

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """A trial started (or restarted on resume)."""
        session = self._session()
        if session is not None:
            session.started.append(trial.trial_id)
        self._notify(trials, "start", trial)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        """A trial reported an epoch."""
        self._notify(trials, "result", trial)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """A trial finished (all epochs, its own early stopping, or pruned)."""
        self.completed.add(trial.trial_id)
        self._releasing.add(trial.trial_id)
        if trial.trial_id in self.pruned:
            self._add_hparams_session(trial, "pruned")
            self._redraw.add(trial.trial_id)
        self._write_csv(trials)
        pruned = trial.trial_id in self.pruned
        self._end_child_run(trial, "FINISHED", "pruned" if pruned else "completed")
        self._notify(trials, "complete", trial)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """A trial raised; the sweep goes on."""
        self._releasing.add(trial.trial_id)
        record = self.record(trial)
        logger.warning(
            "trial %s failed (%s); the sweep goes on",
            trial.trial_id,
            record.error or "see its error.txt",
        )
        if record.epochs > 0:
            self._add_hparams_session(trial, "failure")
            self._redraw.add(trial.trial_id)
        self._write_csv(trials)
        self._end_child_run(trial, "FAILED", "failed")
        self._notify(trials, "error", trial)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Hand the final trials to the session that runs the sweep."""
        session = self._session()
        if session is not None:
            session.final_trials = list(trials)
        for trial in trials:  # still running when the sweep ended: interrupted
            if trial.trial_id not in self.completed and trial.status != "ERROR":
                self._end_child_run(trial, "KILLED", "interrupted")
        # Trials stopped by the end of the sweep (or an interruption) die now; give their
        # controllers a few seconds to be reported dead, then free their workers.
        waiting = {t.trial_id for t in trials}
        deadline = time.monotonic() + 15.0
        while waiting and time.monotonic() < deadline:
            waiting = self._release(waiting)
            if waiting:
                time.sleep(0.5)
        self._releasing = set()
