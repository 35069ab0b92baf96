"""The per-worker function: shard the data, wrap the nets in DDP, run the loop.

It runs in each Ray Train worker (`train_fn_per_worker`) or, for a sweep trial of one
worker, in the Tune trial's own process (`train_in_process`); `floodlab.train.runtime`
holds what differs. Every rank trains on a disjoint shard, reduces its losses/metrics with
the others and reports once per epoch through its `floodlab.train.hooks.WorkerHooks`; rank 0
alone writes checkpoints, metrics.jsonl, summary.json, TensorBoard events, curves.png,
normalization.json and progress.json (its place in the epoch, for the driver's bar).

Checkpoints: rank 0 writes each one, complete, straight into Ray's storage for the run
(``<run>/checkpoints/epoch_NNNN/``, atomically: `floodlab.tracking.checkpoint.write_checkpoint`)
and then reports it to Ray, which only registers it. Ray registers a checkpoint once it has
drained that round's report from *every* rank, so a rank that dies in between leaves a
complete checkpoint on disk that Ray does not know. A (re)started worker group therefore
resumes from the newest complete checkpoint of the run directory, which is never older than
the one Ray hands back: no finished epoch is lost to that race.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset, default_collate

from floodlab.errors import TrainingError
from floodlab.io import write_json
from floodlab.specs import validate_data
from floodlab.tracking.checkpoint import Checkpoint, load_checkpoint
from floodlab.tracking.rundir import WORKERS_DIR, RunDir
from floodlab.train.hooks import WorkerHooks, parse_fault
from floodlab.train.loop import fit
from floodlab.train.progress import ProgressLoader
from floodlab.train.runtime import InTrialRuntime, RayTrainRuntime, Runtime
from floodlab.train.state import LoopState

log = logging.getLogger(__name__)


def _record_worker(
    run: RunDir, rank: int, world: int, device: torch.device, shard: list[int], start: LoopState
) -> None:
    """``workers/rank<r>.json``: which process ran this rank, on which Ray node and device,
    with which samples; `earlier` keeps where the rank ran before each restart."""
    import ray

    path = run.workers_dir / f"rank{rank}.json"
    relative = f"{WORKERS_DIR}/{path.name}"
    attempt, earlier = 1, []
    # On object storage the rank's last record is at the run's URL (it may have run on
    # another node); each rank reads and pushes only its own file.
    text = run.home.read_text(relative) if run.home is not None else None
    if text is None and path.is_file():
        text = path.read_text()
    if text is not None:
        before = json.loads(text)
        attempt = int(before.get("attempt", 0)) + 1
        earlier = [
            *before.get("earlier", []),
            {k: before.get(k) for k in ("attempt", "node_id", "host", "pid", "start_epoch")},
        ]
    write_json(
        path,
        {
            "rank": rank,
            "world_size": world,
            "attempt": attempt,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
            "earlier": earlier,
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "start_epoch": start.epoch + 1,
            "train_samples": len(shard),
            # The dataset indices of this rank's shard in its first epoch (disjoint across ranks).
            "train_indices": shard if len(shard) <= 100_000 else None,
        },
    )
    run.push([relative])


def resume_choice(run: RunDir, resume_from: str | None) -> tuple[str, Checkpoint] | None:
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
        config: see `run_worker`.
    """
    run_worker(config, RayTrainRuntime())


def train_in_process(config: dict[str, Any], to_tune: Callable[[dict[str, Any]], None]) -> None:
    """Train the run of `config` in this process, the only rank (a sweep trial of one
    worker, `tune.in_trial`; see `floodlab.train.driver.train_in_trial`).

    Args:
        config: see `run_worker`; ``use_gpu`` picks the trial's GPU (cuda:0, the one Ray
            gave the trial) or the CPU.
        to_tune: hands each epoch's metrics to Tune, last in the epoch.
    """
    run = RunDir(config["run_dir"])
    keep = int(config["spec"]["trainer"]["keep_checkpoints"])  # validated by run_worker
    device = torch.device("cuda:0" if config.get("use_gpu") else "cpu")
    run_worker(config, InTrialRuntime(device, lambda: run.prune_checkpoints(keep), to_tune))


def run_worker(config: dict[str, Any], runtime: Runtime) -> None:
    """One rank's training: its data shard, task, resume point, loop hooks and loop.

    Args:
        config: ``spec`` (resolved spec dict), ``run_dir`` (a path, or the run's URL on
            object storage), ``store`` (absolute store path or URL), ``runs_root`` (for a KD
            teacher), ``resume_from`` (checkpoint file or None), ``hparams`` (searched
            paths or None), ``cpus_per_worker``, ``fault``, ``mark_latest``, ``use_gpu``.
        runtime: where this rank runs (a Ray Train worker, or a sweep trial's process).
    """
    from floodlab.data.load.dataset import FloodDataset
    from floodlab.tasks import build_task, load_teacher

    spec = validate_data(config["spec"], "<train config>")
    run = RunDir(config["run_dir"])
    rank, world = runtime.rank, runtime.world_size
    if rank == 0 and run.home is not None:
        # A run on object storage: this node's working copy catches up with the run's URL
        # (a restart may land on another node). Ranks' own records are read per rank.
        run.home.pull(exclude=(WORKERS_DIR,))
    torch.set_num_threads(max(1, int(config["cpus_per_worker"])))
    device = runtime.device
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
    train_loader = runtime.prepare_loader(train_loader)
    val_loader = runtime.prepare_loader(val_loader)

    # ---- task: same init on every rank, DDP around every trainable net --------------------
    torch.manual_seed(spec.seed)
    teacher = None
    if spec.distill is not None and spec.distill.alpha > 0:
        teacher = load_teacher(spec, config["runs_root"])
    task = build_task(spec, teacher=teacher)
    task.to(device)
    for name, net in list(task.nets.items()):
        if any(p.requires_grad for p in net.parameters()):
            task.nets[name] = runtime.prepare_model(
                net, find_unused_parameters=task.find_unused_parameters
            )

    # ---- resume: the newest complete checkpoint (after a restart, or --resume) -------------
    # Rank 0 chooses, so every rank loads the same file.
    choice = resume_choice(run, config.get("resume_from")) if rank == 0 else None
    chosen = runtime.broadcast(choice[0] if choice else None)
    checkpoint = None
    if chosen is not None:
        checkpoint = choice[1] if choice is not None else load_checkpoint(chosen)
    start = LoopState.from_checkpoint(checkpoint) if checkpoint is not None else LoopState()

    sampler.set_epoch(start.epoch + 1)
    _record_worker(run, rank, world, device, list(sampler), start)
    batches: Any = train_loader
    if rank == 0:  # the driver's batch progress bar reads rank 0's progress.json
        batches = ProgressLoader(
            train_loader,
            run.progress_path,
            first_epoch=start.epoch + 1,
            limit=t.limit_train_batches,
        )
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
        runtime=runtime,
        mark_latest=bool(config.get("mark_latest", True)),
    )
    fit(
        task,
        spec,
        batches,
        val_loader,
        device=device,
        hooks=hooks,
        resume=checkpoint,
        train_sampler=sampler,
    )
