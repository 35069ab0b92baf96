"""The loss function of every weighted term, by the spec path of its weight (``seg.dice``).

A term is named once, as a `Weight` field of its `loss` section (`floodlab.specs.loss`);
`TERMS` maps that name to the function computing it, and tasks compose a section by name
(`floodlab.tasks.common.weighted_terms`). Adding a term is its weight field plus its
function and one entry here.

An entry is called as ``fn(output, target, valid, section)``:

- ``seg.*``: logits (B, 1, H, W), labels (B, H, W) in {0, 1};
- ``rec.*``: translation and target (B, C, H, W) in [0, 1];

with ``valid`` an optional (B, H, W) bool of usable pixels and ``section`` the spec's
section, whose non-weight fields are the terms' parameters (``tversky_alpha``, ...).

Terms computed from networks rather than from (output, target) -- the adversarial terms,
LPIPS (a frozen network loaded from a local file), FLoRA's feature distillation, CycleGAN's cycle and identity terms -- are composed by their
tasks and listed in `TASK_TERMS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from floodlab.losses.reconstruction import charbonnier_loss, edge_loss, fft_loss, ssim_loss
from floodlab.losses.segmentation import (
    bce_loss,
    boundary_loss,
    dice_loss,
    focal_loss,
    focal_tversky_loss,
    image_dice_loss,
    image_lovasz_loss,
)

TermFn = Callable[[Tensor, Tensor, Tensor | None, Any], Tensor]

TERMS: dict[str, TermFn] = {
    # Segmentation, masked by label validity.
    "seg.dice": lambda logits, target, valid, seg: dice_loss(logits, target, valid),
    "seg.dice_image": lambda logits, target, valid, seg: image_dice_loss(logits, target, valid),
    "seg.lovasz": lambda logits, target, valid, seg: image_lovasz_loss(logits, target, valid),
    "seg.bce": lambda logits, target, valid, seg: bce_loss(logits, target, valid),
    "seg.boundary": lambda logits, target, valid, seg: boundary_loss(logits, target, valid),
    "seg.focal_tversky": lambda logits, target, valid, seg: focal_tversky_loss(
        logits, target, valid, seg.tversky_alpha, seg.tversky_beta, seg.tversky_gamma
    ),
    "seg.focal": lambda logits, target, valid, seg: focal_loss(
        logits, target, valid, seg.focal_alpha, seg.focal_gamma
    ),
    # Reconstruction, masked where the target is not finite.
    "rec.charbonnier": lambda pred, target, valid, rec: charbonnier_loss(
        pred, target, valid, rec.charbonnier_eps
    ),
    "rec.ssim": lambda pred, target, valid, rec: ssim_loss(pred, target, valid),
    "rec.fft": lambda pred, target, valid, rec: fft_loss(pred, target, valid),
    "rec.edge": lambda pred, target, valid, rec: edge_loss(pred, target, valid),
}

# Weighted terms their tasks compute from networks (discriminators, teacher features,
# generators), so they have no entry in `TERMS`.
TASK_TERMS: frozenset[str] = frozenset(
    {
        "rec.adversarial",
        "rec.lpips",
        "distill.weight",
        "distill.seg",
        "gan.adversarial",
        "gan.cycle",
        "gan.identity",
    }
)
