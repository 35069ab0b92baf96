"""The `loss` section: every loss term's weight is a field, so sweeps can search it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from floodlab.specs.base import StrictModel, Weight


class SegLossSpec(StrictModel):
    """Segmentation terms, each masked by label validity."""

    dice: Weight = Field(0.0, description="Soft Dice loss weight.")
    bce: Weight = Field(0.0, description="Binary cross-entropy weight.")
    boundary: Weight = Field(0.0, description="Hydrology-aware boundary/edge alignment weight.")
    focal_tversky: Weight = Field(0.0, description="Focal-Tversky loss weight.")
    focal: Weight = Field(0.0, description="Focal loss weight.")
    tversky_alpha: float = Field(
        0.3, ge=0.0, le=1.0, description="Tversky false-positive weight (alpha)."
    )
    tversky_beta: float = Field(
        0.7, ge=0.0, le=1.0, description="Tversky false-negative weight (beta)."
    )
    tversky_gamma: float = Field(
        0.75, gt=0.0, le=3.0, description="Focal-Tversky exponent: loss = (1 - TI) ** gamma."
    )
    focal_gamma: float = Field(2.0, ge=0.0, description="Focal loss focusing parameter.")
    focal_alpha: float = Field(
        0.25, ge=0.0, le=1.0, description="Focal loss positive-class weight."
    )


class RecLossSpec(StrictModel):
    """Reconstruction (translation) terms."""

    charbonnier: Weight = Field(0.0, description="Charbonnier (smooth L1) weight.")
    ssim: Weight = Field(0.0, description="1 - SSIM weight.")
    fft: Weight = Field(0.0, description="FFT-magnitude (spectral realism) weight.")
    edge: Weight = Field(0.0, description="Edge (Sobel gradient) agreement weight.")
    adversarial: Weight = Field(
        0.0, description="PatchGAN adversarial weight (needs model.discriminator)."
    )
    charbonnier_eps: float = Field(1e-3, gt=0.0, description="Charbonnier epsilon.")


class FeatureDistillSpec(StrictModel):
    """Feature distillation from FLoRA's optical teacher into the fused SAR features."""

    weight: Weight = Field(0.0, description="Weight of the per-scale feature alignment loss.")


class GanLossSpec(StrictModel):
    """CycleGAN terms."""

    adversarial: Weight = Field(0.0, description="LSGAN adversarial weight.")
    cycle: Weight = Field(0.0, description="Cycle-consistency weight (lambda).")
    identity: Weight = Field(
        0.0,
        description="Identity loss weight (absolute; CycleGAN's default is 0.5 * cycle); needs model.sar_channels == number of EO bands.",
    )


class LossSpec(StrictModel):
    """Weights of every loss term. Terms a family does not use must stay 0."""

    seg: SegLossSpec = Field(default_factory=SegLossSpec, description="Segmentation terms.")
    rec: RecLossSpec = Field(default_factory=RecLossSpec, description="Reconstruction terms.")
    distill: FeatureDistillSpec = Field(
        default_factory=FeatureDistillSpec, description="Feature distillation (FLoRA)."
    )
    gan: GanLossSpec = Field(default_factory=GanLossSpec, description="CycleGAN terms.")
    decouple: Literal["none", "stopgrad", "pcgrad"] = Field(
        "none",
        description="FLoRA gradient decoupling in the shared encoder: none, stop-gradient of one branch, or PCGrad projection.",
    )
    stopgrad_branch: Literal["seg", "rec"] = Field(
        "rec",
        description="With decouple=stopgrad: the branch whose gradient does not reach the shared encoder.",
    )


# The seed defaults per family (SYSTEMS.md), merged under what a spec gives.
FAMILY_LOSS_DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "flora": {
        "seg": {"dice": 1.0, "bce": 1.0, "boundary": 0.1},
        "rec": {"charbonnier": 1.0, "ssim": 0.5, "fft": 0.05, "edge": 0.1},
        "distill": {"weight": 0.1},
    },
    "resunet": {"seg": {"focal_tversky": 1.0}},
    "sarkd": {"seg": {"focal_tversky": 1.0}},
    "cyclegan": {"gan": {"adversarial": 1.0, "cycle": 10.0}},
    "cloud_unet": {"seg": {"focal": 0.25, "dice": 0.75}},
}

# The weighted terms each family reads; a non-zero weight elsewhere is an error.
FAMILY_LOSS_TERMS: dict[str, frozenset[str]] = {
    "flora": frozenset(
        {
            "seg.dice",
            "seg.bce",
            "seg.boundary",
            "seg.focal_tversky",
            "seg.focal",
            "rec.charbonnier",
            "rec.ssim",
            "rec.fft",
            "rec.edge",
            "rec.adversarial",
            "distill.weight",
        }
    ),
    "resunet": frozenset({"seg.focal_tversky", "seg.dice", "seg.bce", "seg.focal", "seg.boundary"}),
    "sarkd": frozenset({"seg.focal_tversky", "seg.dice", "seg.bce", "seg.focal"}),
    "cyclegan": frozenset({"gan.adversarial", "gan.cycle", "gan.identity"}),
    "cloud_unet": frozenset({"seg.focal", "seg.dice", "seg.bce", "seg.focal_tversky"}),
}
WEIGHT_FIELDS: dict[str, tuple[str, ...]] = {
    "seg": ("dice", "bce", "boundary", "focal_tversky", "focal"),
    "rec": ("charbonnier", "ssim", "fft", "edge", "adversarial"),
    "distill": ("weight",),
    "gan": ("adversarial", "cycle", "identity"),
}
