"""Run a sweep: OptunaSearch + ASHA/FIFO on Ray Tune, each trial training one run (in its own
process, or driving Ray Train: `tune.in_trial`).

Layout of one sweep, ``<logging.root>/<experiment>/sweep-<YYYYmmdd-HHMMSS>/``
(`floodlab.tracking.sweepdir.SweepDir`; it becomes the experiment's latest sweep when
created)::

    spec.yaml        the sweep spec (resume checks it is unchanged)
    trials/<id>/     each trial's run directory (spec, metrics, checkpoints, TensorBoard)
    tune/            Ray Tune's experiment state (what `--resume` restores)
    trials.csv       every trial: params, final and best metrics, status, epochs, run dir
    best.yaml        the best trial's full spec, `tune: null`, ready for `floodlab train`
    pareto.csv/png   multi-objective sweeps: the non-dominated trials and their plot
    history.png      each objective per trial in completion order, with the running best
    importance.png   Optuna's parameter importances (from 2 finished trials and 2 params)
    sweep.json       summary: counts, best trial, files
    events.*.hparams the HParams experiment (domains of the searched params)
    mlflow.json      the sweep's parent MLflow run, when logging.mlflow is on (each trial's
                     run directory holds its child run's)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from floodlab.errors import FloodlabError, SpecError
from floodlab.specs import ExperimentSpec, spec_hash, spec_to_dict
from floodlab.specs.tune import TuneSpec
from floodlab.storage import Location
from floodlab.tracking.sweepdir import TUNE_DIR as TUNE_DIR
from floodlab.tracking.sweepdir import SweepDir
from floodlab.tune.export import SweepProgress, SweepResult, export_results
from floodlab.tune.hparams import write_hparams_config
from floodlab.tune.space import default_point, define_by_run
from floodlab.tune.trial import TrainerFactory, sweep_trial, trains_in_trial

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search.optuna import OptunaSearch

    from floodlab.tracking.mlflow_runs import MlflowSink, MlflowTarget

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialResources:
    """Logical resources of one trial and how many trials run at once.

    A trial that drives a Ray Train run holds `trial_cpus` (1) for the Tune function
    trainable; Ray Train V2 pins its controller to the trial's node with 0 CPUs; the training
    workers need `worker_cpus` (and `worker_gpus`) more, in their own placement group outside
    Tune's. A trial that trains in its own process (`in_trial`) holds the one worker's CPUs
    and GPU itself: `trial_cpus` = `trainer.cpus_per_worker`, `trial_gpus`, no workers.
    """

    trial_cpus: float
    worker_cpus: float
    worker_gpus: float
    max_concurrent: int
    in_trial: bool = False
    trial_gpus: float = 0.0

    @property
    def cpus_per_trial(self) -> float:
        """Logical CPUs one running trial occupies in all."""
        return self.trial_cpus + self.worker_cpus

    def trial_resources(self) -> dict[str, float]:
        """What Tune reserves for each trial's own process."""
        out = {"cpu": self.trial_cpus}
        if self.trial_gpus:
            out["gpu"] = self.trial_gpus
        return out


def plan_resources(
    spec: ExperimentSpec, cluster: dict[str, float], *, local_ray: bool = True
) -> TrialResources:
    """Per-trial resources and the concurrency that cannot deadlock.

    A trial that drives a Ray Train run needs ``1 + trainer.num_workers *
    trainer.cpus_per_worker`` logical CPUs at once (1 for the Tune trial; 0 for the Train
    controller; the rest for its training workers) and, with GPUs, ``num_workers`` GPUs. A
    trial whose workers cannot be placed still holds its own CPU, so admitting more trials
    than fit would starve the workers of every trial. A trial that trains in its own process
    (`tune.in_trial` with one worker; `auto` does on floodlab's own local Ray, `local_ray`)
    needs ``trainer.cpus_per_worker`` CPUs (and one GPU). Hence::

        max_concurrent = min(tune.max_concurrent or inf,
                             floor(cluster CPUs / CPUs per trial),
                             floor(cluster GPUs / num_workers)   # when training on GPUs
                             tune.num_trials), at least 1

    Args:
        spec: the sweep spec.
        cluster: the cluster's logical resources.
        local_ray: the sweep runs on floodlab's own local Ray (`own_local_ray`).

    Raises:
        ClusterError: one trial alone does not fit on the cluster.
    """
    from floodlab.train.driver import cpu_fit, resolve_use_gpu

    assert spec.tune is not None
    t = spec.trainer
    use_gpu = resolve_use_gpu(spec, cluster)
    in_trial = trains_in_trial(spec, local_ray=local_ray)
    # The Tune trial that drives the run, or (in its own process) that trains it.
    trial_cpus = t.cpus_per_worker if in_trial else 1.0
    worker_cpus = 0.0 if in_trial else t.num_workers * t.cpus_per_worker
    per_trial = trial_cpus + worker_cpus
    fit = cpu_fit(spec, cluster, driver_cpus=0.0 if in_trial else trial_cpus)
    if use_gpu:
        fit = min(fit, int(float(cluster.get("GPU", 0.0)) // t.num_workers))
    wanted = spec.tune.max_concurrent
    if wanted is not None and wanted > fit:
        logger.warning(
            "tune.max_concurrent=%d: only %d trials fit on the cluster at once "
            "(%g CPUs each); running %d",
            wanted,
            fit,
            per_trial,
            fit,
        )
    n = max(1, min(wanted or fit, fit, spec.tune.num_trials))
    gpus = float(t.num_workers) if use_gpu else 0.0
    if in_trial:
        return TrialResources(trial_cpus, 0.0, 0.0, n, in_trial=True, trial_gpus=gpus)
    return TrialResources(trial_cpus, worker_cpus, gpus, n)


def build_sampler(tune: TuneSpec) -> BaseSampler:
    """The seeded Optuna sampler of the sweep.

    Small sweeps get proportionally fewer random start-up trials (TPE, CMA-ES: a quarter of
    the budget, 2..10) and NSGA-II a population of a third of the budget (2..50), so that
    the model-based or evolutionary phase starts within the budget.
    """
    import optuna

    startup = min(10, max(2, tune.num_trials // 4))
    if tune.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=tune.seed, n_startup_trials=startup)
    if tune.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=tune.seed, n_startup_trials=startup, warn_independent_sampling=False
        )
    if tune.sampler == "nsga2":
        population = min(50, max(2, tune.num_trials // 3))
        return optuna.samplers.NSGAIISampler(seed=tune.seed, population_size=population)
    return optuna.samplers.RandomSampler(seed=tune.seed)


def build_searcher(spec: ExperimentSpec) -> OptunaSearch:
    """OptunaSearch over the compiled define-by-run space (multi-objective with lists)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    assert spec.tune is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = spec.tune.objectives
    multi = len(objectives) > 1
    point = default_point(spec) if spec.tune.evaluate_defaults else {}
    return OptunaSearch(
        space=define_by_run(spec.tune),
        metric=[o.metric for o in objectives] if multi else objectives[0].metric,
        mode=[o.mode for o in objectives] if multi else objectives[0].mode,
        points_to_evaluate=[point] if point else None,
        sampler=build_sampler(spec.tune),
    )


def build_scheduler(spec: ExperimentSpec) -> TrialScheduler:
    """ASHA on the epoch counter (recording which trials it prunes), or FIFO."""
    from ray.tune.schedulers import FIFOScheduler

    from floodlab.tune.monitor import PruningASHA

    assert spec.tune is not None
    s = spec.tune.scheduler
    if s.kind == "fifo":
        return FIFOScheduler()
    metric, mode = spec.tune.pruning_metric()
    return PruningASHA(
        time_attr="epoch",
        metric=metric,
        mode=mode,
        max_t=spec.trainer.epochs,
        grace_period=grace_epochs(spec),
        reduction_factor=s.reduction_factor,
        noise=s.noise,
    )


def grace_epochs(spec: ExperimentSpec) -> int:
    """ASHA's grace period: `tune.scheduler.grace_period`, else one epoch past the LR warm-up
    and at least a quarter of the epochs (a trial's first epochs mostly predict one class);
    never more than `trainer.epochs`."""
    assert spec.tune is not None
    grace = spec.tune.scheduler.grace_period
    if grace is None:
        grace = max(spec.schedule.warmup_epochs + 1, math.ceil(spec.trainer.epochs / 4))
    return min(grace, spec.trainer.epochs)


def trial_dirname(trial: Trial) -> str:
    """Tune's folder of a trial: its id (the run directory uses the same name)."""
    return trial.trial_id


def find_sweep(spec: ExperimentSpec, sweep_id: str | None = None) -> SweepDir:
    """The sweep to resume: `sweep_id`, else the experiment's latest.

    Raises:
        FloodlabError: no such sweep, or it has no Tune state to resume.
    """
    sweep = SweepDir.open(f"{spec.name}/{sweep_id or 'latest'}", spec.logging.root)
    if not sweep.has_tune_state():
        raise FloodlabError(
            f"{sweep.where}: this sweep has no Ray Tune state to resume (it stopped before its "
            "first trial was scheduled); start a new sweep with `floodlab tune <spec>` without "
            "--resume"
        )
    return sweep


def _check_same_spec(spec: ExperimentSpec, sweep: SweepDir) -> None:
    saved = sweep.read_spec()
    if spec_hash(saved) != spec_hash(spec):
        raise SpecError(
            [
                f"{sweep.spec_path}: --resume: this sweep was started from a different "
                f"spec (hash {spec_hash(saved)}, given {spec_hash(spec)}); resume with "
                f"`floodlab tune {sweep.spec_path} --resume`, or drop --resume to "
                "start a new sweep"
            ]
        )


def run_sweep(
    spec: ExperimentSpec,
    *,
    address: str | None = None,
    resume: bool = False,
    retry_errored: bool = False,
    sweep_id: str | None = None,
    progress: Callable[[SweepProgress], None] | None = None,
    trainer_factory: TrainerFactory | None = None,
    store: Location | None = None,
) -> SweepResult:
    """Run (or resume) the sweep `spec.tune` describes and export its results.

    With ``logging.mlflow.tracking_uri`` set, the sweep is a parent MLflow run (params: the
    sweep spec's dotted paths and hash; artefacts: the spec and the result files; metrics:
    the best trial's objectives) and each trial a child run (params: its sampled values).

    Failing trials (invalid sampled combinations, NaN losses, worker failures) are recorded
    as ERROR and the sweep goes on. An interruption (Ctrl+C) stops the sweep after saving
    Tune's state; `resume=True` continues it: finished trials are kept, unfinished ones run
    again (from their last checkpoint), errored ones only with `retry_errored`, and the
    searcher's history is restored.

    Args:
        spec: a validated spec with a `tune` section.
        address: Ray cluster address; None runs an in-process local Ray.
        resume: continue the latest sweep of this experiment (or `sweep_id`).
        retry_errored: with `resume`, run errored trials again from scratch.
        sweep_id: which sweep to resume (``sweep-<id>`` or ``<id>``).
        progress: called after every trial event (for progress bars).
        trainer_factory: builds each trial's TorchTrainer; default `build_trainer`.
        store: the spec's store when the caller prepared it already (`ensure_store`);
            default: prepared here.

    Returns:
        The sweep directory, every trial's record, the best trial and the written files.

    Raises:
        SpecError: no `tune` section, or `resume` with a changed spec.
        ClusterError: Ray is unreachable or one trial does not fit on it.
    """
    if spec.tune is None:
        raise SpecError(
            [f"{spec.name}: tune: the spec has no `tune` section; add tune.space to sweep"]
        )
    # Tune's own TensorBoard logger would add a second copy of every trial's scalars to the
    # sweep's TensorBoard; floodlab's runs write their own (plus HParams).
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # Tune's terminal reporter prints tables even at verbose=0; progress is reported
    # through `progress` (the CLI draws the bar), so Tune stays quiet.
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    import ray.tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from floodlab.cluster.ray_env import ensure_ray, own_local_ray
    from floodlab.data.convert.prepare import ensure_store
    from floodlab.tracking.mlflow_runs import open_target
    from floodlab.tune.monitor import SESSIONS, SweepMonitor, SweepSession

    if resume:
        sweep = find_sweep(spec, sweep_id)
        _check_same_spec(spec, sweep)
    tracking = open_target(spec)  # a wrong MLflow URI stops the sweep before anything starts
    # Prepare the store once, here, and hand its path to every trial, so concurrent trials
    # never race to create it; check that a trial fits on the cluster before anything of a
    # new sweep is written.
    if store is None:
        store = ensure_store(spec.data)
    plan = plan_resources(spec, ensure_ray(address), local_ray=own_local_ray())
    if not resume:
        sweep = SweepDir.create(spec.logging.root, spec.name, spec)
    # The sweep's own files are written in `sweep_dir` (on object storage: its working copy,
    # pushed to the URL); trials and the monitor are given its location (path or URL).
    sweep_dir, location = sweep.path, str(sweep.location)
    logger.info("sweep directory %s", sweep.where)
    trainable = ray.tune.with_resources(
        ray.tune.with_parameters(
            sweep_trial,
            spec_data=spec_to_dict(spec),
            sweep_dir=location,
            launch_dir=os.getcwd(),
            store=str(store),
            trainer_factory=trainer_factory,
            in_trial=plan.in_trial,
        ),
        plan.trial_resources(),
    )
    storage = tune_storage(sweep)
    if resume:
        tuner = ray.tune.Tuner.restore(
            f"{storage['storage_path']}/{TUNE_DIR}",
            storage_filesystem=storage.get("storage_filesystem"),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=retry_errored,
        )
    else:
        scheduler = build_scheduler(spec)
        monitor = SweepMonitor(location, spec_to_dict(spec)["tune"], scheduler)
        tuner = ray.tune.Tuner(
            trainable,
            tune_config=ray.tune.TuneConfig(
                search_alg=build_searcher(spec),
                scheduler=scheduler,
                num_samples=spec.tune.num_trials,
                max_concurrent_trials=plan.max_concurrent,
                trial_dirname_creator=trial_dirname,
                trial_name_creator=trial_dirname,
            ),
            run_config=ray.tune.RunConfig(
                name=TUNE_DIR,
                **storage,
                verbose=0,
                failure_config=ray.tune.FailureConfig(max_failures=0, fail_fast=False),
                callbacks=[monitor, JsonLoggerCallback(), CSVLoggerCallback()],
            ),
        )
        write_hparams_config(sweep_dir, spec.tune, _hparams_metrics(spec.tune))
    logger.info(
        "%d trials, at most %d at once, %g CPUs each (%s)",
        spec.tune.num_trials,
        plan.max_concurrent,
        plan.cpus_per_trial,
        "training in the trial's own process"
        if plan.in_trial
        else f"{plan.worker_cpus:g} for Ray Train workers",
    )
    parent = _start_parent_run(tracking, spec, sweep) if tracking is not None else None
    session = SweepSession(progress=progress)
    SESSIONS[location] = session
    try:
        tuner.fit()
    except BaseException as e:
        if parent is not None:
            parent.end("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        SESSIONS.pop(location, None)
    if session.monitor is None:
        if parent is not None:
            parent.end("FAILED")
        raise FloodlabError(f"{sweep.where}: Ray Tune ended without reporting its trials")
    sweep.pull_trials([t.trial_id for t in session.final_trials])
    records = [session.monitor.record(t) for t in session.final_trials]
    result = export_results(
        spec,
        sweep_dir,
        records,
        max_concurrent=plan.max_concurrent,
        cpus_per_trial=plan.cpus_per_trial,
    )
    sweep.push()  # on object storage: trials.csv, best.yaml, plots, sweep.json to the URL
    result.location = sweep.where
    if parent is not None:
        _end_parent_run(parent, result)
    return result


def tune_storage(sweep: SweepDir) -> dict[str, Any]:
    """Ray Tune's storage for `sweep` (``RunConfig`` keywords): its folder, or its URL
    through floodlab's fsspec filesystem (see `floodlab.train.driver.ray_storage`)."""
    from floodlab.train.driver import ray_storage

    return ray_storage(sweep)


def _start_parent_run(tracking: MlflowTarget, spec: ExperimentSpec, sweep: SweepDir) -> MlflowSink:
    """The sweep's parent MLflow run (continued on --resume), with the sweep spec logged."""
    from floodlab.tracking.mlflow_runs import start_spec_run

    parent = start_spec_run(tracking, sweep, spec, "sweep")
    return parent


def _end_parent_run(parent: MlflowSink, result: SweepResult) -> None:
    """Log the sweep's result files and best objectives into its parent run, and end it."""
    from floodlab.tune.results import SWEEP_JSON

    for path in (
        result.trials_csv,
        result.best_yaml,
        result.history_png,
        result.importance_png,
        result.pareto_csv,
        result.pareto_png,
        result.sweep_dir / SWEEP_JSON,
    ):
        if path is not None:
            parent.log_artifact(path)
    assert result.spec.tune is not None
    best = {
        f"best/{o.metric}": result.best_metrics[o.metric]
        for o in result.spec.tune.objectives
        if o.metric in result.best_metrics
    }
    if best:
        parent.log_metrics(best, step=0)
    if result.best is not None:
        parent.set_tags({"floodlab.best_trial": result.best.trial_id})
    parent.end("KILLED" if result.interrupted else "FINISHED")


def _hparams_metrics(tune: TuneSpec) -> list[str]:
    metrics = [o.metric for o in tune.objectives]
    pruning, _ = tune.pruning_metric()
    return metrics + [m for m in (pruning, "val/loss") if m not in metrics]
