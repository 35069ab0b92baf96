"""Losses: masked segmentation, reconstruction, distillation, adversarial, gradient decoupling."""

from floodlab.losses.adversarial import (
    cycle_loss,
    identity_loss,
    l1_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    lsgan_loss,
)
from floodlab.losses.decoupling import (
    all_reduce_grads,
    no_sync,
    pcgrad_backward,
    project_conflicting,
)
from floodlab.losses.distillation import (
    FeatureDistillation,
    kd_binary_loss,
    kd_loss,
    kd_multiclass_loss,
)
from floodlab.losses.reconstruction import charbonnier_loss, edge_loss, fft_loss, ssim_loss
from floodlab.losses.segmentation import (
    bce_loss,
    boundary_loss,
    dice_loss,
    focal_loss,
    focal_tversky_loss,
    image_dice_loss,
    image_lovasz_loss,
    tversky_index,
)
from floodlab.losses.terms import TASK_TERMS, TERMS, TermFn

__all__ = [
    "TASK_TERMS",
    "TERMS",
    "FeatureDistillation",
    "TermFn",
    "all_reduce_grads",
    "bce_loss",
    "boundary_loss",
    "charbonnier_loss",
    "cycle_loss",
    "dice_loss",
    "edge_loss",
    "fft_loss",
    "focal_loss",
    "focal_tversky_loss",
    "identity_loss",
    "image_dice_loss",
    "image_lovasz_loss",
    "kd_binary_loss",
    "kd_loss",
    "kd_multiclass_loss",
    "l1_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "lsgan_loss",
    "no_sync",
    "pcgrad_backward",
    "project_conflicting",
    "ssim_loss",
    "tversky_index",
]
