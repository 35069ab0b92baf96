"""Gradient decoupling of FLoRA's segmentation and reconstruction tasks in the shared encoder.

Three modes (`loss.decouple`):

- ``none``: plain sum of the weighted losses.
- ``stopgrad``: the model detaches the shared features before the branch named by
  `loss.stopgrad_branch` (its `detach_branch` argument), so that branch trains its own
  decoder but sends no gradient into the shared encoder.
- ``pcgrad``: gradient surgery (Yu et al., 2020, "Gradient Surgery for Multi-Task
  Learning"). On the shared parameters, the segmentation gradient g_s and the
  reconstruction gradient g_r are computed separately; when they conflict (g_s . g_r < 0)
  each is projected onto the normal plane of the *other's original* gradient,
  g_s' = g_s - (g_s . g_r / |g_r|^2) g_r and g_r' = g_r - (g_r . g_s / |g_s|^2) g_s, and the
  shared parameters receive g_s' + g_r' (plus the gradient of any other term, e.g. feature
  distillation). Task-specific parameters receive their ordinary gradients.

The projected gradient is *assigned through the loop's own backward*: instead of writing
`.grad` directly, `pcgrad_backward` back-propagates the total loss plus a linear
correction sum_p <p, (g' - g_s - g_r)> whose gradient on each shared parameter p is exactly
the difference. `.grad` therefore ends as if it had been assigned, while the loop's
gradient scaling (fp16), clipping and non-finite checks apply unchanged. The per-task
gradients themselves are computed without loss scaling; prefer bf16 over fp16 with PCGrad.

Under DDP the per-rank forward and backward must not all-reduce the per-task gradients
(they are local quantities the projection combines). Run the step inside
`no_sync(nets)` and call `all_reduce_grads(params)` once the final gradients are in
`.grad`: each rank projects its own gradients and the ranks then average the results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


def project_conflicting(g_seg: Tensor, g_rec: Tensor, eps: float = 1e-12) -> Tensor:
    """PCGrad combination of two flat task gradients.

    Args:
        g_seg: (N,) gradient of the segmentation loss on the shared parameters.
        g_rec: (N,) gradient of the reconstruction loss on the same parameters.
        eps: guards the division for a zero gradient.

    Returns:
        (N,) combined gradient: g_seg + g_rec when they do not conflict, otherwise the sum
        of each projected onto the normal plane of the other.
    """
    dot = torch.dot(g_seg, g_rec)
    if dot >= 0:
        return g_seg + g_rec
    seg_proj = g_seg - dot / (g_rec.dot(g_rec) + eps) * g_rec
    rec_proj = g_rec - dot / (g_seg.dot(g_seg) + eps) * g_seg
    return seg_proj + rec_proj


def _flat_grad(loss: Tensor, params: Sequence[nn.Parameter]) -> Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
            for g, p in zip(grads, params, strict=True)
        ]
    )


def pcgrad_backward(
    backward: Callable[[Tensor], None],
    total: Tensor,
    seg_loss: Tensor,
    rec_loss: Tensor,
    shared: Iterable[nn.Parameter],
) -> float:
    """Backward of `total` with the PCGrad-combined seg/rec gradient on `shared`.

    Args:
        backward: the loop's backward for the optimiser at hand (e.g.
            ``lambda loss: ctx.backward(loss, "main")``; it scales the loss under fp16).
        total: the full weighted loss (seg + rec + any other terms).
        seg_loss: the weighted segmentation part of `total`.
        rec_loss: the weighted reconstruction part of `total`.
        shared: parameters both branches reach (the shared encoder and fusion).

    Returns:
        Cosine similarity of the two task gradients before projection (negative = conflict).
    """
    params = [p for p in shared if p.requires_grad]
    if not params or not (seg_loss.requires_grad and rec_loss.requires_grad):
        backward(total)
        return float("nan")
    g_seg = _flat_grad(seg_loss, params)
    g_rec = _flat_grad(rec_loss, params)
    combined = project_conflicting(g_seg, g_rec)
    correction = (combined - g_seg - g_rec).detach()
    cosine = float(g_seg.dot(g_rec) / (g_seg.norm() * g_rec.norm()).clamp_min(1e-12))
    # A linear term whose gradient on each shared parameter is the correction.
    offset = 0
    surrogate = total
    for p in params:
        n = p.numel()
        surrogate = surrogate + (p * correction[offset : offset + n].view_as(p).to(p.dtype)).sum()
        offset += n
    backward(surrogate)
    return cosine


def ddp_wrapped(nets: nn.ModuleDict) -> list[DistributedDataParallel]:
    """The entries of `nets` that are DistributedDataParallel wrappers."""
    return [net for net in nets.values() if isinstance(net, DistributedDataParallel)]


@contextlib.contextmanager
def no_sync(nets: nn.ModuleDict) -> Iterator[bool]:
    """Suspend DDP gradient all-reduce on every wrapped net; yields whether any was wrapped."""
    wrapped = ddp_wrapped(nets)
    with contextlib.ExitStack() as stack:
        for net in wrapped:
            stack.enter_context(net.no_sync())
        yield bool(wrapped)


def all_reduce_grads(params: Iterable[nn.Parameter]) -> None:
    """Average `.grad` across DDP ranks (a no-op without an initialised process group).

    As DDP does with `find_unused_parameters`, a parameter without a gradient on some
    ranks takes part with zeros there, and one without a gradient on every rank keeps
    `.grad = None` (so the optimiser skips it).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    world = dist.get_world_size()
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    device = params[0].device
    present = torch.tensor([float(p.grad is not None) for p in params], device=device)
    dist.all_reduce(present, op=dist.ReduceOp.SUM)
    used = [p for p, count in zip(params, present.tolist(), strict=True) if count > 0]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if not used:
        return
    # One collective over a flat buffer instead of one per parameter.
    flat = torch.cat([p.grad.reshape(-1) for p in used])  # type: ignore[union-attr]
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(world)
    offset = 0
    for p in used:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p))  # type: ignore[union-attr]
        offset += n
