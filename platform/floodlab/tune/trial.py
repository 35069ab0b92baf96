"""One sweep trial: a Tune function trainable that trains one run, and its record."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floodlab.io import atomic_write_text
from floodlab.specs import validate_data
from floodlab.specs.tune import TuneSpec
from floodlab.tracking.rundir import RunDir
from floodlab.tracking.sweepdir import SweepDir
from floodlab.tune.results import (
    ERROR,
    INTERRUPTED,
    PENDING,
    PRUNED,
    RUNNING,
    TERMINATED,
    TRIALS_DIR,
    TrialRecord,
)
from floodlab.tune.space import apply_point

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from floodlab.specs import ExperimentSpec
    from floodlab.storage import Location

logger = logging.getLogger(__name__)

ERROR_FILE = "error.txt"
# Metrics kept in trials.csv: every validation/test metric and the training loss (the run's
# metrics.jsonl keeps the rest).
_KEPT_METRIC = re.compile(r"^(val|test)/[A-Za-z0-9_./-]+$|^train/loss$")

# Builds the Ray Train run of one trial:
# (spec, run, *, store, resume_from, callbacks, mark_latest) -> trainer.
TrainerFactory = Callable[..., Any]


def short_error(error: BaseException) -> str:
    """A one-line message for trials.csv: the user error inside Ray's wrappers, if any."""
    from floodlab.train.driver import user_error_of

    inner: BaseException = user_error_of(error) or error
    failures = getattr(inner, "worker_failures", None)
    if isinstance(failures, dict) and failures:
        inner = next(iter(failures.values()))
    inner = getattr(inner, "cause", None) or inner
    text = " ".join(str(inner).split())
    return f"{type(inner).__name__}: {text}"[:500]


def sweep_trial(
    config: dict[str, Any],
    *,
    spec_data: dict[str, Any],
    sweep_dir: str,
    launch_dir: str,
    store: str,
    trainer_factory: TrainerFactory | None = None,
    in_trial: bool = False,
) -> None:
    """Tune function trainable: build the trial's spec and run directory, train its run
    (in this process, `tune.in_trial`, else through Ray Train).

    Args:
        config: the point Optuna sampled (dotted spec path -> value).
        spec_data: the sweep spec as plain data.
        sweep_dir: the sweep directory (absolute); the run goes to ``trials/<trial_id>/``.
        launch_dir: where the sweep was started; relative spec paths resolve against it.
        store: the spec's store, prepared once by the sweep's driver (`ensure_store`).
        trainer_factory: builds the TorchTrainer of a trial that drives Ray Train; default
            `floodlab.train.driver.build_trainer`.
        in_trial: train the run in this process instead (a run of one worker; the sweep's
            driver decides, `trains_in_trial`).

    Raises:
        SpecError: the sampled combination is invalid (the trial is recorded as ERROR).
        Exception: whatever the Train run raised (NaN loss, worker failure, ...).
    """
    import ray.tune

    trial_id = ray.tune.get_context().get_trial_id()
    # Tune moved this actor into its own trial folder; go back so that relative paths in
    # the spec (data.store, teacher runs) mean what they mean to the user.
    if os.path.isdir(launch_dir):
        os.chdir(launch_dir)
    sweep = SweepDir(sweep_dir)
    # Named by trial id so a resumed sweep finds it again (no `latest` link among trials).
    run = sweep.trial(trial_id).pull()
    error_file = run.path / ERROR_FILE
    # A trial interrupted with the sweep runs again under the same id on --resume: it
    # continues from its last checkpoint, if it saved one. (--retry-errored gives errored
    # trials new ids, so they start afresh.)
    resume_from = run.latest_checkpoint() if run.home or run.path.is_dir() else None
    try:
        base = validate_data(spec_data, str(sweep.spec_path))
        spec = apply_point(base, dict(config), source=str(run.path))
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_spec(spec)
        _start_child_run(sweep, run, trial_id, dict(config))
        assert spec.tune is not None
        required = [o.metric for o in spec.tune.objectives]
        required += [m for m in [spec.tune.pruning_metric()[0]] if m not in required]
        done = run.read_metrics()
        if resume_from is not None and done and done[-1].get("epoch", 0) >= spec.trainer.epochs:
            # Interrupted after its last epoch: hand Tune the final result, train nothing.
            ray.tune.report({k: v for k, v in done[-1].items() if isinstance(v, int | float)})
            return
        if in_trial:
            _fit_in_trial(spec, run, store, resume_from, required)
        else:
            from floodlab.tune.callbacks import PlacementGroupLedger, SweepReportCallback

            if trainer_factory is None:
                from floodlab.train.driver import build_trainer

                trainer_factory = build_trainer
            trainer = trainer_factory(
                spec,
                run,
                store=store,
                resume_from=resume_from,
                callbacks=[SweepReportCallback(required), PlacementGroupLedger(str(run.path))],
                mark_latest=False,
            )
            trainer.fit()
        # On object storage rank 0 may have run on another node: read what it pushed.
        _check_objectives(run.read_metrics(from_home=True), required)
    except Exception as e:
        atomic_write_text(error_file, short_error(e) + "\n")
        run.push([ERROR_FILE])
        raise


def trains_in_trial(spec: ExperimentSpec, *, local_ray: bool) -> bool:
    """Whether a trial of `spec` trains in its own process (`tune.in_trial`, one worker).

    Args:
        local_ray: the sweep runs on floodlab's own local Ray (``auto`` trains in the trial
            there, and through Ray Train on a cluster, where a node can be lost).
    """
    if spec.tune is None or spec.trainer.num_workers != 1:
        return False
    return local_ray if spec.tune.in_trial == "auto" else bool(spec.tune.in_trial)


def _fit_in_trial(
    spec: ExperimentSpec,
    run: RunDir,
    store: str,
    resume_from: Location | None,
    required: list[str],
) -> None:
    """Train the trial's run in this process, retried `trainer.max_failures` times.

    Each attempt continues from the run's newest complete checkpoint, as a restarted Ray
    Train worker group does. A lost process (its node gone) ends the trial as an error.
    """
    from floodlab.train.driver import train_in_trial
    from floodlab.tune.reporting import TrialReporter

    to_tune = TrialReporter(required)
    failures, allowed = 0, spec.trainer.max_failures
    while True:
        try:
            train_in_trial(spec, run, store=store, resume_from=resume_from, to_tune=to_tune)
            return
        except Exception as e:
            failures += 1
            if 0 <= allowed < failures:
                raise
            logger.warning(
                "trial run %s failed (%s); retry %d of %s from its last checkpoint",
                run.name,
                short_error(e),
                failures,
                allowed if allowed >= 0 else "unlimited",
            )


def _start_child_run(sweep: SweepDir, run: RunDir, trial_id: str, point: dict[str, Any]) -> None:
    """The trial's child MLflow run under the sweep's parent run (params: the sampled values),
    recorded in the trial's run directory for its rank 0; none when the sweep has no
    MLflow run. A store that fails now costs the trial its MLflow run, never its training
    (the sweep's driver checked the store before the first trial)."""
    from floodlab.errors import FloodlabError
    from floodlab.tracking.mlflow_runs import MlflowSink, start_run, target_of

    target, parent = target_of(sweep.path), MlflowSink.of(sweep.path)
    if target is None or parent is None:
        return
    try:
        child = start_run(
            target,
            run.path,
            name=trial_id,
            params=point,
            tags={
                "floodlab.kind": "trial",
                "floodlab.trial_id": trial_id,
                "floodlab.spec_hash": run.spec_hash() or "",
            },
            parent_run_id=parent.run_id,
        )
        child.log_artifact(run.spec_path)
    except FloodlabError as e:
        logger.warning("trial %s trains without its MLflow run: %s", trial_id, e)


def _check_objectives(records: list[dict[str, Any]], required: list[str]) -> None:
    """Fail the trial when its run never reported a metric the sweep optimises."""
    from floodlab.errors import TrainingError

    reported = {k for r in records for k, v in r.items() if isinstance(v, int | float)}
    missing = [m for m in required if m not in reported]
    if missing:
        shown = sorted(k for k in reported if k.startswith("val/"))
        raise TrainingError(
            f"tune.objectives: the run reported no {missing}; choose among the metrics "
            f"this model reports: {shown}"
        )


def trial_error(trial: Trial, sweep_dir: Path) -> str:
    """The one-line error of an errored trial (ours, else the last line of Tune's)."""
    ours = SweepDir(sweep_dir).trial(trial.trial_id).path / ERROR_FILE
    if ours.is_file():
        return ours.read_text().strip()
    theirs = trial.error_file
    if theirs and os.path.isfile(theirs):
        lines = [ln.strip() for ln in Path(theirs).read_text().splitlines() if ln.strip()]
        return lines[-1][:500] if lines else ""
    return ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def trial_record(
    trial: Trial,
    tune: TuneSpec,
    sweep_dir: Path,
    *,
    completed: set[str],
    pruned: set[str],
) -> TrialRecord:
    """The record of one Tune trial.

    Args:
        trial: the Tune trial.
        tune: the sweep's `tune` section.
        sweep_dir: the sweep directory.
        completed: ids of trials Tune completed (a TERMINATED trial not in it was stopped
            by an interruption of the sweep).
        pruned: ids of trials the scheduler stopped early.
    """
    last = dict(trial.last_result or {})
    final = {
        k: v
        for k, v in ((k, _number(v)) for k, v in last.items() if _KEPT_METRIC.match(str(k)))
        if v is not None
    }
    best: dict[str, float] = {}
    for o in tune.objectives:
        stats = (trial.metric_analysis or {}).get(o.metric)
        if stats and _number(stats.get(o.mode)) is not None:
            best[o.metric] = float(stats[o.mode])
    # Tune calls `on_trial_complete` before it marks the trial TERMINATED.
    ended = trial.status == "TERMINATED" or (
        trial.status == "RUNNING" and trial.trial_id in completed
    )
    if trial.status == "ERROR":
        status = ERROR
    elif ended:
        status = (
            INTERRUPTED
            if trial.trial_id not in completed
            else PRUNED
            if trial.trial_id in pruned
            else TERMINATED
        )
    elif trial.status == "RUNNING":
        status = RUNNING
    else:
        status = PENDING
    epoch = _number(last.get("epoch"))
    return TrialRecord(
        trial_id=trial.trial_id,
        status=status,
        params={k: v for k, v in trial.config.items() if k in tune.space},
        final=final,
        best=best,
        epochs=int(epoch) if epoch is not None else 0,
        run_dir=f"{TRIALS_DIR}/{trial.trial_id}",
        error=trial_error(trial, sweep_dir) if status == ERROR else "",
    )
