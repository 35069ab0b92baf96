"""The Ray Train per-worker function: shard the data, wrap the nets in DDP, run the loop.

Every rank trains on a disjoint shard, reduces its losses/metrics with the others and calls
`ray.train.report` once per epoch; rank 0 alone writes checkpoints, metrics.jsonl,
summary.json, TensorBoard events and normalization.json.

Checkpoints: rank 0 writes each one, complete, straight into Ray's storage for the run
(``<run>/checkpoints/epoch_NNNN/``, atomically: `floodlab.tracking.checkpoint.write_checkpoint`)
and then reports it to Ray, which only registers it. Ray registers a checkpoint once it has
drained that round's report from *every* rank, so a rank that dies in between leaves a
complete checkpoint on disk that Ray does not know. A (re)started worker group therefore
resumes from the newest complete checkpoint of the run directory, which is never older than
the one Ray hands back: no finished epoch is lost to that race.

Fault injection (for testing fault tolerance on a real cluster): with
``FLOODLAB_FAULT_KILL="<rank>:<epoch>[:<when>]"`` in the driver's environment, that rank
SIGKILLs its own process once per run: ``after_report`` (default) right after reporting that
epoch, ``before_report`` after rank 0 wrote the epoch's checkpoint but before the rank
reported it (so Ray never registers it). Ray Train then restarts the worker group
(``trainer.max_failures``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler, Subset, default_collate

from floodlab.errors import TrainingError
from floodlab.io import write_json
from floodlab.specs import ExperimentSpec, validate_data
from floodlab.tasks.base import Task
from floodlab.tracking.checkpoint import load_checkpoint, write_checkpoint
from floodlab.tracking.rundir import RunDir, checkpoint_dir_name
from floodlab.tracking.tensorboard import TensorBoardWriter
from floodlab.train.loop import LoopState, fit
from floodlab.train.step import move_batch, unwrapped

log = logging.getLogger(__name__)

FAULT_ENV = "FLOODLAB_FAULT_KILL"
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
    """Loop hooks of one Ray Train rank: report every epoch; rank 0 also writes the run."""

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
        mark_latest: bool = True,
    ):
        self.spec, self.run, self.rank, self.task = spec, run, rank, task
        self.panel_batch, self.device = panel_batch, device
        self.hparam_paths = hparams
        self.fault = fault
        self.started = time.time()
        self.marked_latest = not mark_latest  # True: nothing (more) to mark
        self.tb: TensorBoardWriter | None = None
        if rank == 0:
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
        values = {
            ("train_step/loss" if k == "loss" else f"train_step/loss/{k}"): float(v)
            for k, v in components.items()
        }
        values["train_step/lr"] = next(iter(lrs.values()))
        self.tb.scalars(values, state.global_step)

    def on_epoch_end(
        self,
        state: LoopState,
        record: dict[str, Any],
        *,
        evaluated: bool,
        checkpoint: Callable[[], dict[str, Any]] | None,
        final: bool,
    ) -> None:
        """Write (rank 0), report (every rank), optionally inject the test fault."""
        import ray.train

        epoch = state.epoch
        if self.rank == 0:
            self.run.append_metrics(record)
            if self.tb is not None:
                self.tb.scalars(
                    {
                        k: v
                        for k, v in record.items()
                        if k not in ("global_step", "time", "timestamp")
                    },
                    state.global_step,
                )
                every = self.spec.logging.image_every
                if every and (epoch % every == 0 or final):
                    self._panels(state.global_step)
                self.tb.flush()
        metrics = {k: v for k, v in record.items() if isinstance(v, int | float)}
        if checkpoint is None:
            self._maybe_fault(epoch, "before_report")
            ray.train.report(metrics)
        else:
            ckpt = None
            if self.rank == 0:
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
                ckpt = ray.train.Checkpoint.from_directory(str(folder))
                if not self.marked_latest:
                    # The run is usable from its first checkpoint on.
                    self.marked_latest = self.run.mark_latest()
            self._maybe_fault(epoch, "before_report")
            # Already in the run's storage: Ray registers it without copying.
            ray.train.report(
                metrics,
                checkpoint=ckpt,
                checkpoint_dir_name=checkpoint_dir_name(epoch),
                checkpoint_upload_mode=ray.train.CheckpointUploadMode.NO_UPLOAD,
            )
        if self.rank == 0:
            self._summary(state, record, final)
            if final and self.tb is not None:
                self.tb.hparams(hparams_of(self.spec, self.hparam_paths), record)
                self.tb.close()
        self._maybe_fault(epoch, "after_report")

    # -- helpers ----------------------------------------------------------------------------
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
        if marker.exists():
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"rank {self.rank} killed itself at epoch {epoch} ({when})\n")
        log.warning(
            "%s: rank %d SIGKILLs itself at epoch %d (%s)", FAULT_ENV, self.rank, epoch, when
        )
        os.kill(os.getpid(), signal.SIGKILL)


def _record_worker(
    run: RunDir, rank: int, world: int, device: torch.device, shard: list[int], start: LoopState
) -> None:
    """``workers/rank<r>.json``: which process ran this rank, on what, with which samples."""
    path = run.workers_dir / f"rank{rank}.json"
    attempt = 1
    if path.is_file():
        attempt = int(json.loads(path.read_text()).get("attempt", 0)) + 1
    write_json(
        path,
        {
            "rank": rank,
            "world_size": world,
            "attempt": attempt,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "start_epoch": start.epoch + 1,
            "train_samples": len(shard),
            # The dataset indices of this rank's shard in its first epoch (disjoint across ranks).
            "train_indices": shard if len(shard) <= 100_000 else None,
        },
    )


def parse_fault(text: str | None) -> tuple[int, int, str] | None:
    """``"<rank>:<epoch>[:after_report|before_report]"`` -> (rank, epoch, when)."""
    if not text:
        return None
    parts = str(text).split(":")
    when = parts[2] if len(parts) > 2 else "after_report"
    if len(parts) not in (2, 3) or when not in ("after_report", "before_report"):
        raise TrainingError(
            f"{FAULT_ENV}={text!r}: expected <rank>:<epoch>[:after_report|before_report]"
        )
    return int(parts[0]), int(parts[1]), when


def resume_choice(run: RunDir, resume_from: str | None) -> tuple[str, dict[str, Any]] | None:
    """The checkpoint a (re)starting worker group continues from, loaded.

    The newest complete checkpoint of the run directory: after a worker failure it is at
    least as new as the one Ray Train registered (Ray may miss the last one, see the module
    docstring), and with ``--resume`` it is the run's last one. A checkpoint that does not
    load is skipped (with a warning) for the next older one. Without any, `resume_from`
    (a checkpoint file given to the driver), else None: a fresh start.

    Returns:
        (checkpoint file, its state), or None.
    """
    for found in reversed(run.checkpoints()):
        try:
            state = load_checkpoint(found["path"])
        except TrainingError as e:
            log.warning("skipping checkpoint %s: %s", found["path"], e)
            continue
        log.info("resuming from %s (epoch %d)", found["path"], found["epoch"])
        return str(found["path"]), state
    if resume_from:
        return str(resume_from), load_checkpoint(resume_from)
    return None


def train_fn_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point of one rank (see `floodlab.train.driver.build_trainer`).

    Args:
        config: ``spec`` (resolved spec dict), ``run_dir``, ``store`` (absolute store
            path), ``runs_root`` (for a KD teacher), ``resume_from`` (checkpoint file or
            None), ``hparams`` (searched paths or None), ``cpus_per_worker``, ``fault``.
    """
    import ray.train
    import ray.train.torch
    from ray.train.collective import broadcast_from_rank_zero

    from floodlab.data.load.dataset import FloodDataset
    from floodlab.tasks import build_task, load_teacher

    spec = validate_data(config["spec"], "<train config>")
    run = RunDir(config["run_dir"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(max(1, int(config["cpus_per_worker"])))
    device = ray.train.torch.get_device()
    t = spec.trainer

    # ---- data: disjoint shards of the training split, validation split by rank ----------
    data_spec = spec.data.model_copy(update={"store": config["store"]})
    train_ds = FloodDataset(data_spec, data_spec.train_split, train=True, seed=spec.seed)
    val_ds = FloodDataset(data_spec, data_spec.val_split, train=False, seed=spec.seed)
    sampler: DistributedSampler[int] = DistributedSampler(
        train_ds, num_replicas=world, rank=rank, shuffle=True, seed=spec.seed, drop_last=world > 1
    )
    workers = spec.data.loader_workers
    loader_kw: dict[str, Any] = {
        "batch_size": t.batch_size,
        "num_workers": workers,
        "pin_memory": device.type == "cuda",
        "persistent_workers": workers > 0,
    }
    # Drop a last partial batch only when the shard holds a full one (BatchNorm needs > 1).
    train_loader = DataLoader(
        train_ds, sampler=sampler, drop_last=len(sampler) >= t.batch_size, **loader_kw
    )
    val_loader = DataLoader(Subset(val_ds, range(rank, len(val_ds), world)), **loader_kw)
    train_loader = ray.train.torch.prepare_data_loader(train_loader, add_dist_sampler=False)
    val_loader = ray.train.torch.prepare_data_loader(val_loader, add_dist_sampler=False)

    # ---- task: same init on every rank, DDP around every trainable net --------------------
    torch.manual_seed(spec.seed)
    teacher = None
    if spec.distill is not None and spec.distill.alpha > 0:
        teacher = load_teacher(spec, config["runs_root"])
    task = build_task(spec, teacher=teacher)
    task.to(device)
    for name, net in list(task.nets.items()):
        if any(p.requires_grad for p in net.parameters()):
            task.nets[name] = ray.train.torch.prepare_model(
                net,
                parallel_strategy_kwargs={"find_unused_parameters": task.find_unused_parameters},
            )

    # ---- resume: the newest complete checkpoint (after a restart, or --resume) -------------
    # Rank 0 chooses, so every rank loads the same file.
    choice = resume_choice(run, config.get("resume_from")) if rank == 0 else None
    chosen = broadcast_from_rank_zero(choice[0] if choice else None)
    checkpoint = None
    if chosen is not None:
        checkpoint = choice[1] if choice is not None else load_checkpoint(chosen)
    start = LoopState()
    if checkpoint is not None:
        start = LoopState(
            epoch=int(checkpoint["epoch"]), global_step=int(checkpoint["loop"]["global_step"])
        )

    sampler.set_epoch(start.epoch + 1)
    _record_worker(run, rank, world, device, list(sampler), start)
    panel_batch = None
    if rank == 0:
        if not run.normalization_path.is_file():
            run.write_normalization(train_ds.norm)
        n = min(spec.logging.num_images, len(val_ds))
        if spec.logging.image_every and n:
            panel_batch = default_collate([val_ds[i] for i in range(n)])
    fault = parse_fault(config.get("fault"))
    hooks = WorkerHooks(
        spec,
        run,
        rank,
        task,
        panel_batch,
        device,
        start,
        config.get("hparams"),
        fault,
        mark_latest=bool(config.get("mark_latest", True)),
    )
    fit(
        task,
        spec,
        train_loader,
        val_loader,
        device=device,
        hooks=hooks,
        resume=checkpoint,
        train_sampler=sampler,
    )
