"""Pieces of one training step: precision, the StepContext a task steps through, running means."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from floodlab.errors import TrainingError
from floodlab.tasks.base import Batch, Task, unwrap

log = logging.getLogger(__name__)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for fp32.

    GPUs run bf16 or fp16 as asked; CPUs run bf16 when asked and fp32 otherwise (fp16
    autocast on CPU is slow and gains nothing).
    """
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16" and device.type == "cuda":
        return torch.float16
    if precision == "fp16":
        log.warning("trainer.precision=fp16 needs a GPU; training in fp32 on %s", device)
    return None


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    """The RNG seed of one rank in one epoch: a resumed run draws exactly what it would have."""
    return (seed * 1_000_003 + rank * 10_007 + epoch) % (2**31 - 1)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def move_batch(batch: Batch, device: torch.device) -> Batch:
    """Tensors of a batch onto `device` (strings and lists of ids stay as they are)."""
    non_blocking = device.type == "cuda"
    return {
        k: v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v
        for k, v in batch.items()
    }


def world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def unwrapped(task: Task) -> Iterator[Task]:
    """Temporarily replace DDP wrappers in `task.nets` by the modules they wrap.

    Evaluation and image panels need no gradient synchronisation, and a DDP forward can
    start a buffer broadcast that would wait forever for ranks that are not evaluating.
    """
    wrapped = {name: net for name, net in task.nets.items() if unwrap(net) is not net}
    for name, net in wrapped.items():
        task.nets[name] = unwrap(net)
    try:
        yield task
    finally:
        for name, net in wrapped.items():
            task.nets[name] = net


def sync_buffers(task: Task) -> None:
    """Broadcast rank 0's buffers (e.g. BatchNorm running stats) so every rank evaluates
    and checkpoints the same model; a no-op without a process group."""
    _, size = world()
    if size == 1:
        return
    for net in task.nets.values():
        for buf in net.buffers():
            dist.broadcast(buf, src=0)


class MeanTracker:
    """Running means of scalar tensors by name, kept on device (no sync per step)."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, Tensor]) -> None:
        """Add one step's detached scalars."""
        for name, value in values.items():
            v = value.detach().float().reshape(())
            self.sums[name] = self.sums[name] + v if name in self.sums else v.clone()
            self.counts[name] = self.counts.get(name, 0) + 1

    def reduce(self) -> dict[str, float]:
        """Means over every step of every rank (a collective when a process group exists)."""
        _, size = world()
        names = sorted(self.sums)
        if size > 1:
            # Ranks may have seen different components (e.g. a term present only in some
            # batches): agree on the union of names first.
            gathered: list[Any] = [None] * size
            dist.all_gather_object(gathered, names)
            names = sorted({n for part in gathered for n in part})
        if not names:
            return {}
        device = next(iter(self.sums.values())).device if self.sums else torch.device("cpu")
        if size > 1 and dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        zero = torch.zeros((), device=device)
        packed = torch.stack(
            [
                torch.stack(
                    [
                        self.sums.get(n, zero).to(device),
                        torch.tensor(float(self.counts.get(n, 0)), device=device),
                    ]
                )
                for n in names
            ]
        )  # (n_names, 2): sum, count
        if size > 1:
            dist.all_reduce(packed)
        out = packed.cpu().tolist()
        return {n: (s / c if c else float("nan")) for n, (s, c) in zip(names, out, strict=True)}


class LoopStepContext:
    """The loop's `StepContext`: autocast, (scaled) backward, unscale/clip/step per optimiser.

    Non-finite gradients (outside fp16, where the scaler skips such steps by design) do not
    reach the weights: the step is skipped and the loop stops the run with a TrainingError.
    """

    def __init__(
        self,
        optimizers: dict[str, torch.optim.Optimizer],
        scaler: torch.amp.GradScaler,
        device: torch.device,
        precision: str,
        grad_clip: float | None,
    ):
        self.optimizers = optimizers
        self.scaler = scaler
        self.device = device
        self.dtype = autocast_dtype(precision, device)
        self.grad_clip = grad_clip
        self.epoch = 0
        self.global_step = 0
        self.nonfinite_grads: list[str] = []
        self.stepped = False
        self.grad_norms = MeanTracker()

    def begin(self, epoch: int, global_step: int) -> None:
        """Reset per-step flags and clear stale gradients of every optimiser."""
        self.epoch, self.global_step = epoch, global_step
        self.nonfinite_grads = []
        self.stepped = False
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def autocast(self) -> AbstractContextManager[Any]:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _optimizer(self, opt: str) -> torch.optim.Optimizer:
        try:
            return self.optimizers[opt]
        except KeyError:
            raise KeyError(
                f"Unknown optimiser '{opt}'; available: {sorted(self.optimizers)}"
            ) from None

    def backward(self, loss: Tensor, opt: str = "main") -> None:
        """Backward of `loss` (scaled under fp16) for optimiser `opt`."""
        self._optimizer(opt)
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def step(self, opt: str = "main") -> None:
        """Unscale, check for non-finite gradients, clip, step and zero the grads of `opt`."""
        optimizer = self._optimizer(opt)
        if self.scaler.is_enabled():
            self.scaler.unscale_(optimizer)
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if params:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
            if not self.scaler.is_enabled() and not torch.isfinite(norm):
                self.nonfinite_grads.append(opt)
                optimizer.zero_grad(set_to_none=True)
                return
            if self.grad_clip is not None:
                torch.nn.utils.clip_grads_with_norm_(params, self.grad_clip, norm)
            self.grad_norms.add({opt: norm})
        if self.scaler.is_enabled():
            self.scaler.step(optimizer)
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.stepped = True


def check_finite(
    components: dict[str, Tensor], ctx: LoopStepContext, step_in_epoch: int, lrs: dict[str, float]
) -> None:
    """Stop the run when the loss, a component or a gradient is NaN/inf.

    Raises:
        TrainingError: naming the components, the epoch and step, and what to try.
    """
    names = list(components)
    values = torch.stack([components[n].detach().float().reshape(()) for n in names])
    finite = torch.isfinite(values).tolist()  # one device sync per step
    bad = [n for n, ok in zip(names, finite, strict=True) if not ok]
    if not bad and not ctx.nonfinite_grads:
        return
    where = (
        f"at epoch {ctx.epoch}, step {step_in_epoch} of the epoch (global step {ctx.global_step})"
    )
    if bad:
        vals = {n: values[names.index(n)].item() for n in bad}
        what = "loss component(s) " + ", ".join(f"'{n}' = {v}" for n, v in vals.items())
    else:
        what = f"the gradients of optimiser(s) {ctx.nonfinite_grads} (the losses were finite)"
    lr_text = ", ".join(f"{k}={v:.3g}" for k, v in lrs.items())
    raise TrainingError(
        f"{what} became non-finite {where}. Try a lower optim.lr (now {lr_text}), "
        f"trainer.grad_clip (now {ctx.grad_clip}), a smaller weight for that loss term, "
        "trainer.precision: fp32 instead of fp16, or check the store for NaN inputs."
    )
