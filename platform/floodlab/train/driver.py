"""The driver side of one training run: build the Ray Train `TorchTrainer` and run it.

`build_trainer` is also what a sweep trial calls (from inside a Tune function trainable,
with a `TuneReportCallback`), so it only needs a spec and a run directory.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from floodlab.cluster.ray_env import ensure_ray
from floodlab.errors import ClusterError, FloodlabError, SpecError, TrainingError
from floodlab.specs import ExperimentSpec, spec_to_dict, with_values
from floodlab.storage import Location, absolute
from floodlab.tracking import RunDir
from floodlab.tracking.folder import ExperimentFolder
from floodlab.tracking.mlflow_runs import end_run, open_target, start_spec_run
from floodlab.train.hooks import FAULT_ENV
from floodlab.train.progress import BatchProgress, read_progress
from floodlab.train.worker import train_fn_per_worker

if TYPE_CHECKING:
    from ray.train.torch import TorchTrainer

log = logging.getLogger(__name__)

# Ray's own storage for one run lives in <run>/checkpoints/ (checkpoint dirs + its snapshot).
RAY_STORAGE_NAME = "checkpoints"
# How often the progress follower reads a run on object storage from its URL when the
# working copy shows nothing new (rank 0 on another node).
REMOTE_POLL_S = 5.0


@dataclass
class TrainResult:
    """What a finished run left behind."""

    run: RunDir
    metrics: dict[str, Any]  # the last reported epoch record
    best_checkpoint: Location  # a path, or a URL for a run on object storage


def resolve_use_gpu(spec: ExperimentSpec, resources: dict[str, float]) -> bool:
    """`trainer.use_gpu` against the cluster: auto uses GPUs when every worker can get one.

    Raises:
        ClusterError: use_gpu is true but the cluster has too few GPUs.
    """
    t = spec.trainer
    gpus = float(resources.get("GPU", 0.0))
    if t.use_gpu == "auto":
        if 0 < gpus < t.num_workers:
            log.warning(
                "trainer.use_gpu=auto: %g GPUs for %d workers; training on CPUs",
                gpus,
                t.num_workers,
            )
        return gpus >= t.num_workers and gpus > 0
    if t.use_gpu and gpus < t.num_workers:
        raise ClusterError(
            f"trainer.use_gpu: true needs {t.num_workers} GPUs (one per worker), but the cluster "
            f"has {gpus:g}; set trainer.use_gpu: auto or false, or lower trainer.num_workers"
        )
    return bool(t.use_gpu)


def cpu_fit(spec: ExperimentSpec, resources: dict[str, float], *, driver_cpus: float = 0.0) -> int:
    """How many training runs of `spec` fit in the cluster's logical CPUs at once.

    One run needs ``driver_cpus + trainer.num_workers * trainer.cpus_per_worker`` CPUs: its
    workers, plus what drives it (0 for `floodlab train`; 1 for a sweep trial, which holds a
    CPU for the Tune trial while its workers train).

    Raises:
        ClusterError: not even one run fits.
    """
    t = spec.trainer
    need = driver_cpus + t.num_workers * t.cpus_per_worker
    have = float(resources.get("CPU", 0.0))
    if need > have:
        driver = f"{driver_cpus:g} (the sweep trial) + " if driver_cpus else ""
        raise ClusterError(
            f"trainer.num_workers x trainer.cpus_per_worker: one run needs {driver}"
            f"{t.num_workers} x {t.cpus_per_worker:g} = {need:g} logical CPUs, but the Ray "
            f"cluster has {have:g}; lower trainer.num_workers (e.g. --workers 1 for "
            "`floodlab train`) or trainer.cpus_per_worker"
        )
    return math.floor(have / need)


def build_trainer(
    spec: ExperimentSpec,
    run: RunDir,
    *,
    store: Location,
    resume_from: Location | None = None,
    callbacks: list[Any] | None = None,
    hparams: list[str] | None = None,
    mark_latest: bool = True,
) -> TorchTrainer:
    """The Ray Train V2 `TorchTrainer` of one run (Ray must be initialised).

    Args:
        spec: the resolved spec (a sweep passes the trial's spec).
        run: the run directory; Ray's checkpoints go to ``<run>/checkpoints/``.
        store: the spec's store, prepared by the caller (`ensure_store`, once per command).
        resume_from: a checkpoint file to continue from when Ray has none of its own.
        callbacks: Ray Train user callbacks (a sweep passes a `TuneReportCallback`).
        hparams: dotted paths shown in TensorBoard's HParams dashboard; default the
            `spec.tune.space` keys when the spec has a sweep, else a default set.
        mark_latest: make the run its experiment's ``latest`` once it holds a checkpoint
            (sweep trials are found by trial id instead).

    Returns:
        The trainer; `fit()` runs it.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    config = worker_config(
        spec, run, store=store, resume_from=resume_from, hparams=hparams, mark_latest=mark_latest
    )
    t = spec.trainer
    return TorchTrainer(
        train_fn_per_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=t.num_workers,
            use_gpu=config["use_gpu"],
            resources_per_worker={"CPU": t.cpus_per_worker},
        ),
        run_config=RunConfig(
            name=RAY_STORAGE_NAME,
            **ray_storage(run),
            checkpoint_config=CheckpointConfig(
                num_to_keep=t.keep_checkpoints,
                checkpoint_score_attribute=t.checkpoint_metric,
                checkpoint_score_order=t.checkpoint_mode,
            ),
            failure_config=FailureConfig(max_failures=t.max_failures),
            callbacks=callbacks or [],
        ),
    )


def worker_config(
    spec: ExperimentSpec,
    run: RunDir,
    *,
    store: Location,
    resume_from: Location | None = None,
    hparams: list[str] | None = None,
    mark_latest: bool = True,
) -> dict[str, Any]:
    """What every rank of a run is given (`floodlab.train.worker.run_worker`), once the
    cluster is checked and the run's spec written (Ray must be initialised).

    Raises:
        ClusterError: the run does not fit on the cluster.
    """
    import ray

    resources = dict(ray.cluster_resources())
    t = spec.trainer
    use_gpu = resolve_use_gpu(spec, resources)
    cpu_fit(spec, resources)
    if not run.spec_path.is_file() or run.read_spec() != spec:
        run.write_spec(spec)
    run.push()  # a run on object storage: its spec and normalisation at its URL first
    if hparams is None and spec.tune is not None:
        hparams = list(spec.tune.space)
    # Relative paths in the spec mean "relative to where the driver runs"; workers may
    # start elsewhere, so they get absolute ones (the spec itself, and its hash, stay as written).
    return {
        "spec": spec_to_dict(spec),
        "run_dir": str(run.location),
        "store": absolute(store),
        "runs_root": absolute(spec.logging.root),
        "resume_from": str(resume_from) if resume_from else None,
        "hparams": hparams,
        "cpus_per_worker": t.cpus_per_worker,
        "fault": os.environ.get(FAULT_ENV),
        "mark_latest": mark_latest,
        "use_gpu": use_gpu,
    }


def train_in_trial(
    spec: ExperimentSpec,
    run: RunDir,
    *,
    store: Location,
    resume_from: Location | None,
    to_tune: Callable[[dict[str, Any]], None],
) -> None:
    """Train one run in this process: a sweep trial of one worker (`tune.in_trial`).

    The same run as a one-worker `build_trainer` run (files, checkpoints, best-k kept),
    without Ray Train's controller, worker actor and process group. Not retried here.

    Args:
        spec: the trial's spec.
        run: the trial's run directory.
        store: the spec's store, prepared by the sweep's driver.
        resume_from: a checkpoint file to continue from when the run has none of its own.
        to_tune: hands each epoch's metrics to Tune.
    """
    from floodlab.train.worker import train_in_process

    config = worker_config(spec, run, store=store, resume_from=resume_from, mark_latest=False)
    train_in_process(config, to_tune)


def ray_storage(run: ExperimentFolder) -> dict[str, Any]:
    """Ray's storage for a run (or sweep): its folder, or on object storage its URL through
    the same fsspec filesystem floodlab uses (one endpoint and credential chain for stores,
    run files, checkpoints and Tune's state)."""
    if run.home is None:
        return {"storage_path": str(run.path)}
    import pyarrow.fs

    from floodlab.storage import filesystem

    fs, path = filesystem(run.home.url)
    return {
        "storage_path": path,
        "storage_filesystem": pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs)),
    }


def user_error_of(error: BaseException) -> FloodlabError | None:
    """The FloodlabError a Ray `TrainingFailedError` wraps (from any rank), if any."""
    seen: set[int] = set()
    stack: list[Any] = [error, *getattr(error, "worker_failures", {}).values()]
    stack.append(getattr(error, "controller_failure", None))
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, FloodlabError):
            return e
        stack += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return None


def _check_resumable(spec: ExperimentSpec, run: RunDir) -> Location:
    """The checkpoint to resume `run` from under `spec`; clear errors when it cannot be."""
    old = run.read_spec()
    new_d, old_d = spec_to_dict(spec), spec_to_dict(old)
    changed = [k for k in ("model", "data") if new_d[k] != old_d[k]]
    if changed:
        raise TrainingError(
            f"--resume {run.where}: the spec's {changed} section(s) differ from the run's "
            f"spec.yaml; resume with the run's own spec (`floodlab train {run.spec_path} "
            f"--resume ...`) or start a new run"
        )
    latest = run.latest_checkpoint()
    if latest is None:
        raise TrainingError(
            f"--resume {run.where}: the run has no checkpoint to continue from; start a new run"
        )
    done = run.checkpoints()[-1]["epoch"]
    if done >= spec.trainer.epochs:
        raise TrainingError(
            f"--resume {run.where}: the run already trained {done} epochs and trainer.epochs="
            f"{spec.trainer.epochs}; raise it to continue, e.g. --set trainer.epochs={done + 5}"
        )
    return latest


def _preflight(spec: ExperimentSpec, run: RunDir, store: Location) -> None:
    """Fail on bad data, a missing teacher or LPIPS weights file now, not after Ray started (and retried) workers.

    Also records the normalisation parameters in the run directory.
    """
    from floodlab.data.load.dataset import FloodDataset

    data = spec.data.model_copy(update={"store": str(store)})
    train_ds = FloodDataset(data, data.train_split, train=True, seed=spec.seed)
    FloodDataset(data, data.val_split, train=False, seed=spec.seed)
    if not run.normalization_path.is_file():
        run.write_normalization(train_ds.norm)
    if spec.distill is not None and spec.distill.alpha > 0:
        from floodlab.tasks import load_teacher

        load_teacher(spec, spec.logging.root)
    if spec.loss.rec.lpips > 0:
        from floodlab.losses.perceptual import load_lpips

        load_lpips(str(spec.loss.rec.lpips_weights))


def _checkpoint_note(run: RunDir) -> str:
    """What a failed run kept: its last complete checkpoint and how to continue, or none."""
    found = run.checkpoints()
    if not found:
        return f"The run ({run.where}) wrote no checkpoint; nothing of it can be resumed."
    last = found[-1]
    return (
        f"The run's last complete checkpoint is epoch {last['epoch']} ({last['path']}); "
        f"continue it with `floodlab train <spec> --resume {run.where}` once fixed."
    )


def _with_note(error: FloodlabError, note: str) -> FloodlabError:
    """The same user error with `note` appended to its message."""
    if isinstance(error, SpecError):
        return SpecError([*error.problems, note])
    try:
        return type(error)(f"{error} {note}")
    except TypeError:  # an error class with another constructor
        return TrainingError(f"{error} {note}")


class _MetricsFollower(threading.Thread):
    """Calls `progress(record)` for every new line of a run's metrics.jsonl, and
    `batch_progress(p)` whenever rank 0's progress.json changes."""

    def __init__(
        self,
        run: RunDir,
        progress: Callable[[dict[str, Any]], None] | None,
        skip: int,
        batch_progress: Callable[[BatchProgress], None] | None = None,
    ):
        super().__init__(daemon=True, name="floodlab-progress")
        self.rundir, self.progress, self.seen = run, progress, skip
        self.batch_progress = batch_progress
        self.last_batch: BatchProgress | None = read_progress(run.progress_path)
        self.stopping = threading.Event()
        self.quiet_since = time.monotonic()

    def poll(self) -> None:
        if self.batch_progress is not None:
            current = read_progress(self.rundir.progress_path)
            if current is not None and current != self.last_batch:
                self.last_batch = current
                self.batch_progress(current)
        if self.progress is None:
            return
        records = self.rundir.read_metrics()
        if len(records) > self.seen:
            self.quiet_since = time.monotonic()
        elif self.rundir.home is not None and time.monotonic() - self.quiet_since > REMOTE_POLL_S:
            # Rank 0 may be on another node: what it pushed to the run's URL.
            self.quiet_since = time.monotonic()
            records = max(records, self.rundir.read_metrics(from_home=True), key=len)
        if len(records) < self.seen:  # a restart truncated records it will re-run
            self.seen = len(records)
        for record in records[self.seen :]:
            self.progress(record)
        self.seen = len(records)

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            self.poll()

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.poll()


def train(
    spec: ExperimentSpec,
    *,
    address: str | None = None,
    resume: str | None = None,
    workers: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    store: Location | None = None,
    batch_progress: Callable[[BatchProgress], None] | None = None,
) -> TrainResult:
    """Train one spec on Ray (a local in-process Ray unless `address` names a cluster).

    With ``logging.mlflow.tracking_uri`` set, the store is opened first (a wrong URI
    stops here, before data and Ray), the run gets an MLflow run (params: the spec's
    dotted paths and its hash; rank 0 logs every epoch record with the epoch as step;
    artefacts: the resolved spec, summary.json, curves.png), ended FINISHED, FAILED or
    KILLED with the run.

    Args:
        spec: the validated spec.
        address: Ray address (see `ensure_ray`).
        resume: a run (directory, ``<experiment>/<run>`` or ``<experiment>/latest``) to
            continue at its last checkpoint's epoch + 1, in the same run directory.
        workers: override `trainer.num_workers`.
        progress: called with each epoch record as rank 0 writes it.
        store: the spec's store when the caller prepared it already (`ensure_store`);
            default: prepared here.
        batch_progress: called whenever rank 0 reports its place in an epoch (batches
            done of total, about twice a second at most).

    Returns:
        The run directory, the last epoch's metrics and the best checkpoint.

    Raises:
        FloodlabError: bad store/spec/teacher, NaN loss, unreachable cluster, ...
    """
    from ray.train import TrainingFailedError

    from floodlab.data.convert.prepare import ensure_store

    if workers is not None:
        spec = with_values(spec, {"trainer.num_workers": workers}, "--workers")
    tracking = open_target(spec)  # a wrong MLflow URI stops the run before anything starts
    if store is None:
        store = ensure_store(spec.data)
    ensure_ray(address)
    resume_from = None
    if resume is not None:
        run = RunDir.open(resume, root=spec.logging.root)
        resume_from = _check_resumable(spec, run)
    else:
        run = RunDir.create(spec.logging.root, spec.name, spec=spec)
    _preflight(spec, run, store)
    trainer = build_trainer(spec, run, store=store, resume_from=resume_from)
    mlflow = None
    if tracking is not None:
        mlflow = start_spec_run(tracking, run, spec, "run")
        run.push()  # on object storage: rank 0 finds the MLflow run wherever it starts
    follower = None
    if progress is not None or batch_progress is not None:
        follower = _MetricsFollower(
            run, progress, skip=len(run.read_metrics()), batch_progress=batch_progress
        )
        follower.start()
    status = "FAILED"  # the MLflow run's end, unless fit() returns or is interrupted
    try:
        result = trainer.fit()
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except TrainingFailedError as e:
        user = user_error_of(e)
        run.pull()  # a run on object storage: what rank 0 pushed
        run.write_summary({**run.read_summary(), "status": "failed", "error": str(user or e)})
        run.push()
        kept = _checkpoint_note(run)
        if user is not None:
            raise _with_note(user, kept) from None
        raise TrainingError(
            f"training failed on the Ray workers (logs: the worker output above, or "
            f"/tmp/ray/session_latest/logs); {e} {kept}"
        ) from e
    finally:
        if follower is not None:
            follower.stop()
        if mlflow is not None and status != "FINISHED":
            end_run(mlflow, run, status)
    run.pull()  # a run on object storage: what rank 0 pushed, wherever it ran
    run.mark_latest()
    summary = run.read_summary()
    summary["checkpoints"] = [str(c["path"]) for c in run.checkpoints()]
    run.write_summary(summary)
    run.push()
    if mlflow is not None:
        end_run(mlflow, run, status)
    return TrainResult(
        run=run, metrics=dict(result.metrics or {}), best_checkpoint=run.best_checkpoint()
    )
