"""The `model` section: one variant per model family, a discriminated union on `kind`.

Each family's spec class is the family's declaration on the spec side: its fields, the
loss terms it reads with their defaults (`losses`), and its own cross-section checks
(`check`). The network builder and the task class join it in `floodlab.tasks.FAMILIES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, get_args

from pydantic import Field, model_validator

from floodlab.bands import CYCLEGAN_BAND_SETS
from floodlab.specs.base import Fraction, StrictModel
from floodlab.specs.loss import RULE, FamilyLoss, active_weights

if TYPE_CHECKING:
    from floodlab.specs.experiment import ExperimentSpec


class FamilySpec(StrictModel):
    """Base of the model families' specs: what a family declares beside its fields.

    Attributes:
        losses: the loss terms the family reads and its default weights.
        decouples: whether `loss.decouple` (gradient decoupling of two task branches)
            applies to the family.
        takes_teacher: whether the top-level `distill` section (logit distillation from a
            trained teacher) applies to the family.
    """

    losses: ClassVar[FamilyLoss]
    decouples: ClassVar[bool] = False
    takes_teacher: ClassVar[bool] = False

    def check(self, spec: ExperimentSpec) -> None:
        """Checks across spec sections that concern this family only.

        Called by `ExperimentSpec`'s validator after the generic checks (loss terms the
        family does not read, band count vs input channels, search-space paths).

        Args:
            spec: the experiment spec holding this model section.

        Raises:
            ValueError: a message that starts with the dotted path of the field to fix.
        """

    def require_weight(self, spec: ExperimentSpec, section: str) -> None:
        """Refuse a loss section none of whose terms has a weight > 0, stating the rule."""
        if not active_weights(getattr(spec.loss, section)):
            raise self.losses.nothing_weighted(section)


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


class FloraSpec(FamilySpec):
    """FLoRA: multi-task SAR-to-optical translation and flood segmentation with an optical teacher."""

    losses: ClassVar[FamilyLoss] = FamilyLoss(
        reads=("seg", "rec", "distill"),
        # The weights of the authors' released training configuration: reconstruction
        # 0.8 (Charbonnier), SSIM 0.15, segmentation 1.0 (Dice) + BCE 0.2, edge 0.2,
        # frequency 0.1, hydrology (boundary) 0.05, distillation 0.03 (their range
        # 0.02-0.05). Their optional GAN term is `loss.rec.adversarial` with
        # `model.discriminator: true`, from `loss.rec.adversarial_start_epoch` (6).
        defaults={
            "seg": {"dice": 1.0, "bce": 0.2, "boundary": 0.05},
            "rec": {"charbonnier": 0.8, "ssim": 0.15, "fft": 0.1, "edge": 0.2},
            "distill": {"weight": 0.03},
        },
    )
    decouples: ClassVar[bool] = True

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
    optical_dropout: Fraction = Field(
        0.3,
        description="Probability of dropping the optical prior for a training batch, so the model learns to infer from SAR alone.",
    )
    sar_alone_pass: bool = Field(
        False,
        description="On training batches that fuse the optical prior, also decode the same batch from SAR alone and add its losses, so the decoders learn SAR-alone inference on every batch (with loss.distill.seg, from the fused prediction too); costs a second fusion and decoder pass on those batches.",
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

    def check(self, spec: ExperimentSpec) -> None:
        """Optical and target bands fit the teacher and the translation; the adversarial
        term has a discriminator; some segmentation or pixel reconstruction term is
        weighted (both, under PCGrad)."""
        d, loss = spec.data, spec.loss
        if len(d.optical_bands) != self.optical_channels:
            raise ValueError(
                f"data.optical_bands: FLoRA's teacher reads model.optical_channels={self.optical_channels} bands, "
                f"but data.optical_bands={d.optical_bands}"
            )
        if len(d.target_bands) != self.out_channels:
            raise ValueError(
                f"data.target_bands: FLoRA translates to model.out_channels={self.out_channels} bands, but data.target_bands={d.target_bands}"
            )
        if loss.distill.seg > 0 and not self.sar_alone_pass:
            raise ValueError(
                "model.sar_alone_pass: loss.distill.seg > 0 distils the fused segmentation into "
                "the SAR-alone pass of the same batch; set model.sar_alone_pass: true or "
                "loss.distill.seg: 0"
            )
        if self.sar_alone_pass and self.optical_dropout >= 1:
            raise ValueError(
                "model.sar_alone_pass: with model.optical_dropout=1 no batch fuses the prior, "
                "so there is no fused pass to pair; lower model.optical_dropout or set "
                "model.sar_alone_pass: false"
            )
        if loss.rec.adversarial > 0 and not self.discriminator:
            raise ValueError(
                "model.discriminator: loss.rec.adversarial > 0 needs model.discriminator: true"
            )
        if loss.rec.lpips > 0 and not loss.rec.lpips_weights:
            raise ValueError(
                "loss.rec.lpips_weights: loss.rec.lpips > 0 needs a local LPIPS weights file "
                "(nothing is downloaded); give its path or set loss.rec.lpips=0"
            )
        if loss.rec.lpips > 0 and self.out_channels != 3:
            raise ValueError(
                f"loss.rec.lpips: LPIPS compares 3-band images, but model.out_channels={self.out_channels}"
            )
        seg = active_weights(loss.seg)
        # The adversarial and perceptual terms only sharpen a translation the pixel terms learn.
        rec = {
            name: w
            for name, w in active_weights(loss.rec).items()
            if name not in ("adversarial", "lpips")
        }
        if not seg and not rec:
            raise self.losses.nothing_weighted("seg", "rec")
        if loss.decouple == "pcgrad" and not (seg and rec):
            raise ValueError(
                "loss.decouple: pcgrad projects the segmentation and reconstruction gradients, "
                f"so both loss.seg and loss.rec need a weight > 0; {RULE}: the family's "
                f"defaults are {self.losses.described('seg', 'rec')}"
            )


class ResUNetSpec(FamilySpec):
    """Dual-attention residual U-Net for SAR flood segmentation (sigmoid output)."""

    losses: ClassVar[FamilyLoss] = FamilyLoss(
        reads=("seg",), defaults={"seg": {"focal_tversky": 1.0}}
    )

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

    def check(self, spec: ExperimentSpec) -> None:
        """Some segmentation term is weighted."""
        self.require_weight(spec, "seg")


SarKDArch = Literal["unet", "pspnet", "mlp_256", "unet_light", "psp_mixer"]
SARKD_TEACHERS: tuple[str, ...] = ("unet", "pspnet")


class SarKDSpec(FamilySpec):
    """SAR-KD teachers (MobileNetV2 U-Net / PSPNet) and lightweight students, single-channel input."""

    losses: ClassVar[FamilyLoss] = FamilyLoss(
        reads=(
            "seg.focal_tversky",
            "seg.dice",
            "seg.dice_image",
            "seg.lovasz",
            "seg.bce",
            "seg.focal",
        ),
        defaults={"seg": {"focal_tversky": 1.0}},
    )
    takes_teacher: ClassVar[bool] = True

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

    def check(self, spec: ExperimentSpec) -> None:
        """A distilling student names its teacher; teachers do not distil; some
        supervised (segmentation) term is weighted."""
        distill = spec.distill
        if distill is not None and distill.alpha > 0 and distill.teacher is None:
            raise ValueError(
                "distill.teacher: a KD student needs a teacher: set distill.teacher.run or distill.teacher.checkpoint "
                "(or distill.alpha: 0 to train without distillation)"
            )
        if distill is not None and self.is_teacher:
            raise ValueError(
                f"distill: model.arch={self.arch!r} is a teacher; distill applies to students only"
            )
        self.require_weight(spec, "seg")


class CycleGANSpec(FamilySpec):
    """CycleGAN SAR<->EO with ResNet generators and 70x70 PatchGAN discriminators."""

    losses: ClassVar[FamilyLoss] = FamilyLoss(
        reads=("gan",), defaults={"gan": {"adversarial": 1.0, "cycle": 10.0}}
    )

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

    def check(self, spec: ExperimentSpec) -> None:
        """Target bands match `bands`; no labels; the identity term has as many SAR as EO
        channels; some CycleGAN term is weighted."""
        d = spec.data
        want = list(CYCLEGAN_BAND_SETS[self.bands])
        if d.target_bands != want:
            raise ValueError(
                f"data.target_bands: model.bands={self.bands!r} translates to {want}, but data.target_bands={d.target_bands}"
            )
        if d.label != "none":
            raise ValueError("data.label: CycleGAN trains without labels; set data.label: none")
        if spec.loss.gan.identity > 0 and self.sar_channels != len(want):
            # Identity feeds EO images to the SAR->EO generator and SAR to EO->SAR.
            raise ValueError(
                f"loss.gan.identity: the identity term G_ab(EO) ~ EO needs as many SAR as EO channels, "
                f"but got (model.sar_channels={self.sar_channels}, EO bands of model.bands={self.bands!r}: {len(want)}); "
                "set loss.gan.identity: 0"
            )
        self.require_weight(spec, "gan")


class CloudUNetSpec(FamilySpec):
    """Cloud-segmentation U-Net with an EfficientNet-B2 encoder."""

    losses: ClassVar[FamilyLoss] = FamilyLoss(
        reads=(
            "seg.focal",
            "seg.dice",
            "seg.dice_image",
            "seg.lovasz",
            "seg.bce",
            "seg.focal_tversky",
        ),
        defaults={"seg": {"focal": 0.25, "dice": 0.75}},
    )

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

    def check(self, spec: ExperimentSpec) -> None:
        """Cloud labels; some segmentation term is weighted."""
        if spec.data.label != "cloud":
            raise ValueError("data.label: the cloud U-Net needs data.label: cloud")
        self.require_weight(spec, "seg")


ModelSpec = Annotated[
    FloraSpec | ResUNetSpec | SarKDSpec | CycleGANSpec | CloudUNetSpec,
    Field(discriminator="kind"),
]
# kind -> spec class, read off the union (the spec side of `floodlab.tasks.FAMILIES`).
_SPECS: dict[str, type[FamilySpec]] = {
    cls.model_fields["kind"].default: cls for cls in get_args(get_args(ModelSpec)[0])
}
MODEL_KINDS: tuple[str, ...] = tuple(_SPECS)


def family_spec(kind: str) -> type[FamilySpec]:
    """The spec class of a model family.

    Raises:
        KeyError: no family has this `kind`.
    """
    if kind not in _SPECS:
        raise KeyError(f"Unknown model '{kind}'; available: {sorted(_SPECS)}")
    return _SPECS[kind]


def input_channels(
    model: FloraSpec | ResUNetSpec | SarKDSpec | CycleGANSpec | CloudUNetSpec,
) -> int:
    """Number of `image` channels the model expects."""
    if isinstance(model, FloraSpec | CycleGANSpec):
        return model.sar_channels
    return model.in_channels
