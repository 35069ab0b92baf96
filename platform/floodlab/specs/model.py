"""The `model` section: one variant per model family, a discriminated union on `kind`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from floodlab.specs.base import StrictModel


class FusionSpec(StrictModel):
    """FLoRA's per-scale SAR-optical fusion (windowed cross-attention + FiLM + gated residual)."""

    window: int = Field(
        8, ge=2, description="Side of the local attention window, in feature pixels."
    )
    heads: int = Field(4, ge=1, description="Attention heads per fused scale.")
    scales: int = Field(
        3, ge=1, description="Number of encoder scales fused, counted from the deepest."
    )
    shifted: bool = Field(
        True, description="Shift windows by half a window on alternate blocks (Swin)."
    )
    cross_attention: bool = Field(
        True, description="Use windowed cross-attention (SAR queries, optical keys/values)."
    )
    film: bool = Field(
        True, description="Use FiLM conditioning (per-channel scale/shift from optical features)."
    )
    gate_init: float = Field(
        0.01,
        ge=-1.0,
        lt=1.0,
        description="Initial value of the learned residual gate; near zero so fusion starts as identity.",
    )


class FloraSpec(StrictModel):
    """FLoRA: multi-task SAR-to-optical translation and flood segmentation with an optical teacher."""

    kind: Literal["flora"] = "flora"
    sar_channels: int = Field(2, ge=1, description="SAR input channels (VV, VH).")
    optical_channels: int = Field(
        4, ge=1, description="Optical prior channels for the teacher (RGB + NDVI)."
    )
    out_channels: int = Field(3, ge=1, description="Translated optical channels (RGB).")
    num_classes: int = Field(1, ge=1, description="Segmentation logits (1 = binary flood).")
    widths: list[int] = Field(
        default_factory=lambda: [32, 64, 128, 256],
        min_length=2,
        description="SAR encoder widths per scale (each scale halves resolution).",
    )
    teacher_width_mult: float = Field(
        0.5,
        gt=0,
        le=2.0,
        description="Optical teacher widths as a fraction of `widths` (lightweight teacher).",
    )
    fusion: FusionSpec = Field(default_factory=FusionSpec, description="Fusion hyperparameters.")
    optical_dropout: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Probability of dropping the optical prior for a training batch, so the model learns to infer from SAR alone.",
    )
    discriminator: bool = Field(
        False,
        description="Train a PatchGAN discriminator on the translation (needs loss.rec.adversarial > 0).",
    )
    weights: str | None = Field(
        None,
        description="Local weights file (state_dict) loaded into the model; nothing is downloaded.",
    )

    @model_validator(mode="after")
    def _checks(self) -> FloraSpec:
        if self.fusion.scales > len(self.widths):
            raise ValueError(
                f"fusion.scales: `fusion.scales <= len(widths)` must hold, but got (fusion.scales={self.fusion.scales}, len(widths)={len(self.widths)})"
            )
        for w in self.widths[-self.fusion.scales :]:
            if w % self.fusion.heads:
                raise ValueError(
                    f"fusion.heads: every fused width must be divisible by fusion.heads, but got (width={w}, heads={self.fusion.heads})"
                )
        return self


class ResUNetSpec(StrictModel):
    """Dual-attention residual U-Net for SAR flood segmentation (sigmoid output)."""

    kind: Literal["resunet"] = "resunet"
    in_channels: int = Field(3, ge=1, description="Engineered SAR bands: VV, ratio, magnitude.")
    widths: list[int] = Field(
        default_factory=lambda: [64, 128, 256, 512],
        min_length=2,
        description="Encoder widths; the decoder mirrors them.",
    )
    se_reduction: int = Field(16, ge=1, description="Squeeze-and-excitation channel reduction.")
    spatial_attention: bool = Field(True, description="Spatial attention after each decoder block.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout at the bottleneck.")
    weights: str | None = Field(None, description="Local weights file loaded into the model.")


SarKDArch = Literal["unet", "pspnet", "mlp_256", "unet_light", "psp_mixer"]
SARKD_TEACHERS: tuple[str, ...] = ("unet", "pspnet")


class SarKDSpec(StrictModel):
    """SAR-KD teachers (MobileNetV2 U-Net / PSPNet) and lightweight students, single-channel input."""

    kind: Literal["sarkd"] = "sarkd"
    arch: SarKDArch = Field(
        "unet_light",
        description="unet/pspnet (teachers, MobileNetV2 encoder), mlp_256 (baseline), unet_light/psp_mixer (students).",
    )
    in_channels: int = Field(
        1, ge=1, description="Input channels (1 in the band-agnostic setting)."
    )
    encoder_weights: str | None = Field(
        None,
        description="Local MobileNetV2 encoder weights file (teachers); random init otherwise.",
    )
    mixer_patch: int = Field(16, ge=2, description="PSPMixer patch-embedding size.")
    mixer_dim: int = Field(128, ge=8, description="PSPMixer token width.")
    mixer_depth: int = Field(4, ge=1, description="PSPMixer number of Mixer blocks.")
    weights: str | None = Field(None, description="Local weights file loaded into the whole model.")

    @property
    def is_teacher(self) -> bool:
        """Teachers are the MobileNetV2 U-Net and PSPNet."""
        return self.arch in SARKD_TEACHERS


class CycleGANSpec(StrictModel):
    """CycleGAN SAR<->EO with ResNet generators and 70x70 PatchGAN discriminators."""

    kind: Literal["cyclegan"] = "cyclegan"
    bands: Literal["rgb", "nir_swir_re", "rgb_nir"] = Field(
        "rgb",
        description="Optical band configuration translated to (see floodlab.bands.CYCLEGAN_BAND_SETS).",
    )
    sar_channels: int = Field(2, ge=1, description="SAR channels (VV, VH).")
    ngf: int = Field(64, ge=4, description="Generator base width.")
    ndf: int = Field(64, ge=4, description="Discriminator base width.")
    n_blocks: int = Field(9, ge=1, description="Residual blocks in each generator.")
    weights: str | None = Field(
        None, description="Local weights file loaded into the generators/discriminators."
    )


class CloudUNetSpec(StrictModel):
    """Cloud-segmentation U-Net with an EfficientNet-B2 encoder."""

    kind: Literal["cloud_unet"] = "cloud_unet"
    in_channels: int = Field(3, ge=1, description="Input channels (RGB).")
    num_classes: int = Field(1, ge=1, description="Output logits (1 = binary cloud).")
    decoder_widths: list[int] = Field(
        default_factory=lambda: [256, 128, 64, 32, 16],
        min_length=5,
        max_length=5,
        description="Decoder widths, deepest first.",
    )
    encoder_weights: str | None = Field(
        None, description="Local EfficientNet-B2 encoder weights file; random init otherwise."
    )
    weights: str | None = Field(None, description="Local weights file loaded into the whole model.")


ModelSpec = Annotated[
    FloraSpec | ResUNetSpec | SarKDSpec | CycleGANSpec | CloudUNetSpec,
    Field(discriminator="kind"),
]
MODEL_KINDS: tuple[str, ...] = ("flora", "resunet", "sarkd", "cyclegan", "cloud_unet")


def input_channels(
    model: FloraSpec | ResUNetSpec | SarKDSpec | CycleGANSpec | CloudUNetSpec,
) -> int:
    """Number of `image` channels the model expects."""
    if isinstance(model, FloraSpec | CycleGANSpec):
        return model.sar_channels
    return model.in_channels
