"""The loop hooks of one rank: report every epoch; rank 0 also writes the run.

Rank 0 writes each checkpoint, complete, straight into Ray's storage for the run
(``<run>/checkpoints/epoch_NNNN/``, atomically: `floodlab.tracking.checkpoint.write_checkpoint`)
and then reports it through its runtime (`floodlab.train.runtime`): to Ray Train with
``NO_UPLOAD``, which only registers it, or, in a sweep trial's own process, keeping the best
checkpoints as Ray Train would; every rank reports its epoch record. Rank 0 alone writes
metrics.jsonl, summary.json, TensorBoard events and curves.png (redrawn after every epoch
in a background thread, complete at the end: `floodlab.tracking.curves.CurvesPainter`), and
logs each epoch record to the run's MLflow run when the driver recorded one in the run
directory (``mlflow.json``).

Fault injection (for testing fault tolerance on a real cluster): with
``FLOODLAB_FAULT_KILL="<rank>:<epoch>[:<when>]"`` in the driver's environment, that rank
SIGKILLs its own process once per run: ``after_report`` (default) right after reporting that
epoch, ``before_report`` after rank 0 wrote the epoch's checkpoint but before the rank
reported it (so Ray never registers it), ``node`` right after reporting, taking its whole
Ray node down with it (it SIGKILLs the node's raylet, its parent: a lost machine; never
aim it at a rank on the head node). Ray Train then restarts the worker group
(``trainer.max_failures``).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from floodlab.errors import TrainingError
from floodlab.metrics import keys
from floodlab.specs import ExperimentSpec
from floodlab.storage import join
from floodlab.tasks.base import Task
from floodlab.tracking.checkpoint import Checkpoint, upload_checkpoint, write_checkpoint
from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name
from floodlab.tracking.curves import CurvesPainter
from floodlab.tracking.mlflow_runs import MlflowSink
from floodlab.tracking.rundir import WORKERS_DIR, RunDir
from floodlab.tracking.tensorboard import TensorBoardWriter
from floodlab.train.runtime import Runtime
from floodlab.train.state import LoopState
from floodlab.train.step import move_batch, unwrapped

log = logging.getLogger(__name__)

FAULT_ENV = "FLOODLAB_FAULT_KILL"
FAULT_MOMENTS: tuple[str, ...] = ("after_report", "before_report", "node")
# HParams shown for runs that are not sweep trials.
DEFAULT_HPARAMS: tuple[str, ...] = (
    "model.kind",
    "optim.name",
    "optim.lr",
    "optim.weight_decay",
    "schedule.kind",
    "trainer.batch_size",
    "trainer.epochs",
    "trainer.num_workers",
    "trainer.precision",
    "data.patch_size",
    "seed",
)


def hparams_of(spec: ExperimentSpec, paths: list[str] | None = None) -> dict[str, Any]:
    """Dotted path -> value: the searched paths of a trial, else the defaults plus the
    non-zero loss weights."""
    from floodlab.specs import spec_to_dict
    from floodlab.specs.loss import WEIGHT_FIELDS
    from floodlab.specs.paths import get_path

    data = spec_to_dict(spec)
    if paths is None:
        paths = list(DEFAULT_HPARAMS)
        paths += [
            f"loss.{section}.{name}"
            for section, names in WEIGHT_FIELDS.items()
            for name in names
            if get_path(data, f"loss.{section}.{name}")
        ]
    return {p: get_path(data, p) for p in paths}


class WorkerHooks:
    """Loop hooks of one rank: report every epoch; rank 0 also writes the run."""

    def __init__(
        self,
        spec: ExperimentSpec,
        run: RunDir,
        rank: int,
        task: Task,
        panel_batch: dict[str, Any] | None,
        device: torch.device,
        start: LoopState,
        hparams: list[str] | None,
        fault: tuple[int, int, str] | None,
        *,
        runtime: Runtime,
        mark_latest: bool = True,
    ):
        self.spec, self.run, self.rank, self.task = spec, run, rank, task
        self.runtime = runtime
        self.panel_batch, self.device = panel_batch, device
        self.hparam_paths = hparams
        self.fault = fault
        self.started = time.time()
        self.marked_latest = not mark_latest  # True: nothing (more) to mark
        self.tb: TensorBoardWriter | None = None
        self.mlflow: MlflowSink | None = None
        self.curves: CurvesPainter | None = None
        if rank == 0:
            self.curves = CurvesPainter(run.curves_path, title=run.name)
            self.mlflow = MlflowSink.of(run.path)
            # A restart re-runs the epochs after its checkpoint: drop their old records
            # and hide their old TensorBoard events, so nothing is duplicated.
            run.truncate_metrics(after_epoch=start.epoch)
            if spec.logging.tensorboard:
                self.tb = TensorBoardWriter(run.tensorboard_dir, purge_step=start.global_step + 1)

    # -- loop hooks ----------------------------------------------------------------------
    def on_step(
        self, state: LoopState, components: dict[str, Tensor], lrs: dict[str, float]
    ) -> None:
        """Step-level scalars of rank 0 under ``train_step/``."""
        if self.tb is None:
            return
        values = {keys.train_step(keys.loss_component(k)): float(v) for k, v in components.items()}
        values[keys.train_step(keys.lr())] = next(iter(lrs.values()))
        self.tb.scalars(values, state.global_step)

    def on_epoch_end(
        self,
        state: LoopState,
        record: dict[str, Any],
        *,
        evaluated: bool,
        checkpoint: Callable[[], Checkpoint] | None,
        final: bool,
    ) -> None:
        """Write (rank 0), report (every rank), optionally inject the test fault."""
        epoch = state.epoch
        if self.rank == 0:
            self.run.append_metrics(record)
            if self.curves is not None:
                self.curves.paint(self.run.read_metrics())
                if final:  # complete before the report, after which a sweep may stop the run
                    self.curves.close()
            if self.mlflow is not None:
                self.mlflow.log_metrics(record, step=epoch)
            if self.tb is not None:
                self.tb.scalars(
                    {
                        k: v
                        for k, v in record.items()
                        if k not in (keys.GLOBAL_STEP, keys.TIME, keys.TIMESTAMP)
                    },
                    state.global_step,
                )
                every = self.spec.logging.image_every
                if every and (epoch % every == 0 or final):
                    self._panels(state.global_step)
                self.tb.flush()
        metrics = {k: v for k, v in record.items() if isinstance(v, int | float)}
        where: Path | str | None = None
        if checkpoint is not None and self.rank == 0:
            t = self.spec.trainer
            folder = self.run.checkpoints_dir / checkpoint_dir_name(epoch)
            write_checkpoint(
                folder,
                checkpoint(),
                {
                    "epoch": epoch,
                    "global_step": state.global_step,
                    "metric": t.checkpoint_metric,
                    "mode": t.checkpoint_mode,
                    "score": record.get(t.checkpoint_metric),
                    "metrics": metrics,
                },
            )
            where = self._persist(folder)
            if not self.marked_latest:
                # The run is usable from its first checkpoint on.
                self.marked_latest = self.run.mark_latest()
        self._maybe_fault(epoch, "before_report")
        self.runtime.report(metrics, epoch=epoch, checkpoint=where, saved=checkpoint is not None)
        if self.rank == 0:
            self._summary(state, record, final)
            if final and self.tb is not None:
                self.tb.hparams(hparams_of(self.spec, self.hparam_paths), record)
                self.tb.close()
            if self.run.home is not None:  # on object storage: this epoch's files to the URL
                self.run.home.push(exclude=(WORKERS_DIR,))  # each rank pushes its own record
        self.runtime.epoch_done(metrics)
        self._maybe_fault(epoch, "after_report")
        self._maybe_fault(epoch, "node")

    # -- helpers ----------------------------------------------------------------------------
    def _persist(self, folder: Path) -> Path | str:
        """Where the complete checkpoint directory rank 0 just wrote lives for good.

        A local run's directory is already in the run (Ray's storage for it). A run on
        object storage uploads it to the run's URL + ``checkpoints/`` and drops the local
        copy: checkpoints live only at the URL.
        """
        if self.run.home is None:
            return folder
        url = join(self.run.checkpoints_url, folder.name)
        upload_checkpoint(folder, url)
        shutil.rmtree(folder, ignore_errors=True)
        return url

    @torch.no_grad()
    def _panels(self, step: int) -> None:
        if self.panel_batch is None or self.tb is None:
            return
        batch = move_batch(self.panel_batch, self.device)
        with unwrapped(self.task):
            self.task.eval()
            outputs = self.task.predict(batch)
            panels = self.task.panels(batch, outputs)
        self.tb.images(panels, step)

    def _summary(self, state: LoopState, record: dict[str, Any], final: bool) -> None:
        t = self.spec.trainer
        status = "running"
        if final:
            status = "stopped_early" if state.stopped_early else "completed"
        best = self.run.checkpoints()
        best_path = str(self.run.best_checkpoint()) if best else None
        self.run.write_summary(
            {
                **self.run.read_summary(),
                "experiment": self.spec.name,
                "run": self.run.name,
                "spec_hash": self.run.spec_hash(),
                "status": status,
                "epochs_completed": state.epoch,
                "epochs": t.epochs,
                "global_step": state.global_step,
                "best": {
                    "metric": t.checkpoint_metric,
                    "mode": t.checkpoint_mode,
                    "value": state.best_metric,
                    "epoch": state.best_epoch,
                    "checkpoint": best_path,
                },
                "final": record,
                "checkpoints": [str(c["path"]) for c in best],
                "time_s": time.time() - self.started,
            }
        )

    def _maybe_fault(self, epoch: int, when: str) -> None:
        if self.fault is None or self.fault != (self.rank, epoch, when):
            return
        marker = self.run.workers_dir / "fault_injected"
        if marker.exists() or (
            self.run.home is not None
            and self.run.home.read_text(f"{WORKERS_DIR}/{marker.name}") is not None
        ):
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"rank {self.rank} killed itself at epoch {epoch} ({when})\n")
        self.run.push([f"{WORKERS_DIR}/{marker.name}"])
        log.warning(
            "%s: rank %d SIGKILLs itself at epoch %d (%s)", FAULT_ENV, self.rank, epoch, when
        )
        if when == "node":
            import psutil  # shipped with Ray

            parent = psutil.Process(os.getppid())
            if parent.name() != "raylet":
                raise TrainingError(f"{FAULT_ENV}: rank {self.rank}'s parent is not a raylet")
            parent.kill()
        os.kill(os.getpid(), signal.SIGKILL)


def parse_fault(text: str | None) -> tuple[int, int, str] | None:
    """``"<rank>:<epoch>[:after_report|before_report|node]"`` -> (rank, epoch, when)."""
    if not text:
        return None
    parts = str(text).split(":")
    when = parts[2] if len(parts) > 2 else "after_report"
    if len(parts) not in (2, 3) or when not in FAULT_MOMENTS:
        raise TrainingError(
            f"{FAULT_ENV}={text!r}: expected <rank>:<epoch>[:{'|'.join(FAULT_MOMENTS)}]"
        )
    return int(parts[0]), int(parts[1]), when
