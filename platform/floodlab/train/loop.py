"""The training loop in plain torch: epochs of task steps, evaluation, schedules, early stopping.

It reads top to bottom: seed, lr, train steps (forward/backward/clip/step inside the task via
the StepContext), NaN checks, reduce, evaluate, schedule, early stopping, hand the record and
a checkpoint to the hooks. Ray is not imported here; the Ray worker supplies the data
loaders (sharded), the DDP-wrapped task and hooks that write and report. With one process
and no hooks it is the plain-PyTorch loop the overhead benchmark compares against.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any, Protocol

import torch
from torch import Tensor

from floodlab.data import sample as S
from floodlab.errors import TrainingError
from floodlab.metrics import keys
from floodlab.specs import ExperimentSpec
from floodlab.tasks.base import Batch, Task
from floodlab.tracking.checkpoint import Checkpoint
from floodlab.train.averaging import WeightAverage
from floodlab.train.schedules import EpochLR
from floodlab.train.state import LoopState as LoopState
from floodlab.train.state import checkpoint_state, restore
from floodlab.train.step import (
    LoopStepContext,
    MeanTracker,
    autocast_dtype,
    check_finite,
    epoch_seed,
    move_batch,
    seed_everything,
    sync_buffers,
    unwrapped,
    world,
)

log = logging.getLogger(__name__)


class LoopHooks(Protocol):
    """What the loop tells the outside world (the Ray worker writes, logs and reports)."""

    def on_step(
        self, state: LoopState, components: dict[str, Tensor], lrs: dict[str, float]
    ) -> None:
        """After every `logging.log_every_n_steps` optimisation steps (rank-local values)."""
        ...

    def on_epoch_end(
        self,
        state: LoopState,
        record: dict[str, Any],
        *,
        evaluated: bool,
        checkpoint: Callable[[], Checkpoint] | None,
        final: bool,
    ) -> None:
        """After each epoch; `checkpoint` builds the checkpoint when one is due."""
        ...


def should_evaluate(epoch: int, spec: ExperimentSpec) -> bool:
    """Validate on epoch 1 (so every report carries val/* metrics), every `eval_every`, and last."""
    t = spec.trainer
    return epoch == 1 or epoch % t.eval_every == 0 or epoch == t.epochs


def _improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _require(record: dict[str, Any], metric: str, field_name: str) -> float | None:
    """The value of a monitored metric; a clear error when the task never reports it."""
    if metric in record:
        value = record[metric]
        return None if value is None else float(value)
    available = sorted(k for k in record if k.startswith(("train/", "val/")))
    raise TrainingError(
        f"{field_name}: {metric!r} is not reported by this model; set it to one of {available}"
    )


def no_valid_pixels(spec: ExperimentSpec, split: str, epoch: int) -> TrainingError:
    """The error of an epoch whose batches held no valid labelled pixel."""
    store = spec.data.store
    return TrainingError(
        f"data.store {store}: epoch {epoch} saw no valid labelled pixel in split "
        f"'{split}'; the store was deleted, emptied or changed while training, or the split "
        f"holds only invalid labels. Check it with `floodlab inspect {store}`."
    )


@torch.no_grad()
def evaluate(
    task: Task,
    loader: Iterable[Batch],
    device: torch.device,
    *,
    limit: int | None = None,
    precision: str = "fp32",
    labelled: bool = False,
) -> dict[str, float]:
    """Validation metrics: mean loss components plus the task's (rank-reduced) metrics.

    Every rank must call it (the reductions are collectives under DDP).

    Args:
        labelled: the batches carry labels; validation that saw no valid pixel (on any
            rank) then returns {} instead of meaningless metrics.

    Returns:
        ``{"loss": ..., "loss/<component>": ..., "<metric>": ...}`` without a split prefix.
    """
    task.eval()
    task.reset_metrics()
    dtype = autocast_dtype(precision, device)
    tracker, seen = MeanTracker(), MeanTracker()
    with unwrapped(task):
        for i, batch in enumerate(loader):
            if limit is not None and i >= limit:
                break
            batch = move_batch(batch, device)
            if labelled:
                seen.add({"valid": batch[S.VALID].sum()})
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                components = task.eval_step(batch)
            tracker.add(components)
        losses = tracker.reduce()
        metrics = task.compute_metrics()
    if labelled and not seen.reduce().get("valid", 0.0) > 0:
        return {}
    out = {keys.loss_component(k): v for k, v in losses.items()}
    out.update({k: float(v) for k, v in metrics.items()})
    return out


def fit(
    task: Task,
    spec: ExperimentSpec,
    train_loader: Iterable[Batch],
    val_loader: Iterable[Batch],
    *,
    device: torch.device | None = None,
    hooks: LoopHooks | None = None,
    resume: Checkpoint | None = None,
    train_sampler: Any = None,
) -> LoopState:
    """Train `task` for `spec.trainer.epochs` epochs (or until early stopping).

    Args:
        task: the task; its nets may already be DDP-wrapped and on `device`.
        spec: the experiment spec (trainer, schedule, logging sections are read here).
        train_loader: training batches (this rank's shard).
        val_loader: validation batches (this rank's shard).
        device: where to train; default CPU.
        hooks: receives step values and epoch records; default none.
        resume: a loaded checkpoint to continue from (at its epoch + 1).
        train_sampler: a sampler with `set_epoch` (reshuffles the shards every epoch).

    Returns:
        The final loop state.

    Raises:
        TrainingError: on non-finite losses/gradients or a monitored metric the task
            does not report.
    """
    t, sched_spec = spec.trainer, spec.schedule
    device = device or torch.device("cpu")
    rank, _ = world()
    task.to(device)
    labelled = spec.data.label != "none"  # translation-only data carries no labels

    optimizers = task.configure_optimizers()
    schedulers = {name: EpochLR(opt, sched_spec, t.epochs) for name, opt in optimizers.items()}
    # A gradient scaler only for fp16 on GPU (bf16 has fp32's range and needs none).
    scaler = torch.amp.GradScaler(
        device.type, enabled=autocast_dtype(t.precision, device) == torch.float16
    )
    state = LoopState()
    if resume is not None:
        state = restore(resume, task, optimizers, schedulers, scaler)
        log.info("resuming after epoch %d (global step %d)", state.epoch, state.global_step)
    averaging = None
    if t.ema_decay is not None:
        averaging = WeightAverage(task, t.ema_decay, steps=state.global_step)
        if resume is not None and "training" in resume:  # else: the average starts here
            averaging.load_state_dict(resume["task"])
    # Validation and image panels see the averaged weights when there are some.
    judged = averaging.swapped_in if averaging is not None else nullcontext
    ctx = LoopStepContext(optimizers, scaler, device, t.precision, t.grad_clip)

    for epoch in range(state.epoch + 1, t.epochs + 1):
        started = time.perf_counter()
        # Seeds depend only on (seed, rank, epoch): a resumed run draws what it would have.
        seed_everything(epoch_seed(spec.seed, rank, epoch))
        if train_sampler is not None and hasattr(train_sampler, "set_epoch"):
            train_sampler.set_epoch(epoch)
        lrs = {name: s.start_epoch(epoch - 1) for name, s in schedulers.items()}

        # ---- train -----------------------------------------------------------------------
        task.train()
        tracker, seen = MeanTracker(), MeanTracker()
        ctx.grad_norms = MeanTracker()
        steps = 0
        for i, batch in enumerate(train_loader):
            if t.limit_train_batches is not None and i >= t.limit_train_batches:
                break
            ctx.begin(epoch, state.global_step)
            batch = move_batch(batch, device)
            if labelled:
                seen.add({"valid": batch[S.VALID].sum()})  # stays on the device
            components = task.train_step(batch, ctx)
            check_finite(components, ctx, i + 1, lrs)
            if scaler.is_enabled() and ctx.stepped:
                scaler.update()
            if averaging is not None and ctx.stepped:
                averaging.update()
            tracker.add(components)
            state.global_step += 1
            steps += 1
            if hooks is not None and state.global_step % spec.logging.log_every_n_steps == 0:
                hooks.on_step(state, components, lrs)
        if steps == 0:
            raise TrainingError(
                f"data.{spec.data.train_split}: no training batch in epoch {epoch}; the split "
                f"is empty or smaller than trainer.batch_size={t.batch_size} per worker"
            )
        # Lost data reads as fill values (no valid label): never let that pass as training.
        if labelled and not seen.reduce().get("valid", 0.0) > 0:
            raise no_valid_pixels(spec, spec.data.train_split, epoch)
        train = tracker.reduce()
        grad_norm = ctx.grad_norms.reduce()
        record: dict[str, Any] = {keys.EPOCH: epoch}
        record.update({keys.train(keys.loss_component(k)): v for k, v in train.items()})
        for name, value in grad_norm.items():
            record[keys.train(keys.grad_norm(name))] = value
        record[keys.lr()] = next(iter(lrs.values()))
        record.update({keys.lr(k): v for k, v in list(lrs.items())[1:]})

        # ---- evaluate, schedule, best, early stopping --------------------------------------
        evaluated = should_evaluate(epoch, spec)
        if evaluated:
            sync_buffers(task)
            with judged(task):
                if averaging is not None:
                    sync_buffers(task)  # the average's statistics, validated and saved
                val = evaluate(
                    task,
                    val_loader,
                    device,
                    limit=t.limit_val_batches,
                    precision=t.precision,
                    labelled=labelled,
                )
            if not val:
                raise no_valid_pixels(spec, spec.data.val_split, epoch)
            state.last_val = {keys.val(k): v for k, v in val.items()}
        record.update(state.last_val)
        record[keys.GLOBAL_STEP] = state.global_step

        if sched_spec.kind == "plateau" and (evaluated or sched_spec.monitor.startswith("train/")):
            monitored = _require(record, sched_spec.monitor, "schedule.monitor")
            for s in schedulers.values():
                s.observe(monitored)
        if evaluated or t.checkpoint_metric.startswith("train/"):
            score = _require(record, t.checkpoint_metric, "trainer.checkpoint_metric")
            if score is not None and _improved(score, state.best_metric, t.checkpoint_mode):
                state.best_metric, state.best_epoch = score, epoch
        es = t.early_stopping
        if es is not None and (evaluated or es.metric.startswith("train/")):
            watched = _require(record, es.metric, "trainer.early_stopping.metric")
            if watched is not None and _improved(watched, state.early_best, es.mode, es.min_delta):
                state.early_best, state.early_bad = watched, 0
            else:
                state.early_bad += 1
                state.stopped_early = state.early_bad >= es.patience and epoch >= es.min_epochs
        record[keys.TIME] = time.perf_counter() - started  # s: this epoch's training + validation
        record[keys.TIMESTAMP] = time.time()  # unix s when the epoch ended (wall-clock intervals)
        state.epoch = epoch

        # ---- hand over: metrics, TensorBoard, checkpoint, report ----------------------------
        final = epoch == t.epochs or state.stopped_early
        due = epoch % t.checkpoint_every == 0 or final

        def make_checkpoint(record: dict[str, Any] = record) -> Checkpoint:
            return checkpoint_state(
                task, optimizers, schedulers, scaler, state, spec, record, averaging
            )

        if hooks is not None:
            with judged(task):
                hooks.on_epoch_end(
                    state,
                    record,
                    evaluated=evaluated,
                    checkpoint=make_checkpoint if due else None,
                    final=final,
                )
        if state.stopped_early:
            log.info(
                "early stopping after epoch %d: %s did not improve for %d checks",
                epoch,
                es and es.metric,
                es and es.patience,
            )
            break
    return state
