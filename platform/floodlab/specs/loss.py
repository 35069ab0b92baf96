"""The `loss` section: every loss term's weight is a field, so sweeps can search it.

A term is named once, as a `Weight` field of its section below: the lists of terms
(`WEIGHT_FIELDS`), the families' declarations (`FamilyLoss`) and the loss functions
(`floodlab.losses.terms.TERMS`) all go by that name.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from floodlab.specs.base import Fraction, StrictModel, Weight, is_weight


class SegLossSpec(StrictModel):
    """Segmentation terms, each masked by label validity."""

    dice: Weight = Field(0.0, description="Soft Dice loss weight (counts pooled over the batch).")
    dice_image: Weight = Field(
        0.0,
        description="Soft Dice of each image, averaged over the batch's images: the loss of the mean per-image IoU that evaluate reports (an image with little water weighs as much as a flooded one).",
    )
    lovasz: Weight = Field(
        0.0,
        description="Lovasz hinge loss of each image, averaged over the batch's images: a convex surrogate of 1 - IoU per image that acts on the logits' margins.",
    )
    bce: Weight = Field(0.0, description="Binary cross-entropy weight.")
    boundary: Weight = Field(0.0, description="Hydrology-aware boundary/edge alignment weight.")
    focal_tversky: Weight = Field(0.0, description="Focal-Tversky loss weight.")
    focal: Weight = Field(0.0, description="Focal loss weight.")
    tversky_alpha: Fraction = Field(0.3, description="Tversky false-positive weight (alpha).")
    tversky_beta: Fraction = Field(0.7, description="Tversky false-negative weight (beta).")
    tversky_gamma: float = Field(
        0.75, gt=0.0, le=3.0, description="Focal-Tversky exponent: loss = (1 - TI) ** gamma."
    )
    focal_gamma: float = Field(2.0, ge=0.0, description="Focal loss focusing parameter.")
    focal_alpha: Fraction = Field(0.25, description="Focal loss positive-class weight.")


class RecLossSpec(StrictModel):
    """Reconstruction (translation) terms."""

    charbonnier: Weight = Field(0.0, description="Charbonnier (smooth L1) weight.")
    ssim: Weight = Field(0.0, description="1 - SSIM weight.")
    fft: Weight = Field(0.0, description="FFT-magnitude (spectral realism) weight.")
    edge: Weight = Field(0.0, description="Edge (Sobel gradient) agreement weight.")
    adversarial: Weight = Field(
        0.0, description="PatchGAN adversarial weight (needs model.discriminator)."
    )
    lpips: Weight = Field(
        0.0,
        description="LPIPS (AlexNet) perceptual weight; needs loss.rec.lpips_weights, a local weights file (nothing is downloaded).",
    )
    charbonnier_eps: float = Field(1e-3, gt=0.0, description="Charbonnier epsilon.")
    lpips_weights: str | None = Field(
        None,
        description="Local LPIPS weights file: AlexNet features.* and LPIPS v0.1 lin*.model.1.weight in one state_dict (see floodlab.losses.perceptual).",
    )
    adversarial_start_epoch: int = Field(
        6,
        ge=1,
        description="First epoch (1-based) of the adversarial term and of the discriminator's updates; FLoRA's authors start it at epoch 6, once the pixel terms have shaped the translation.",
    )


class FeatureDistillSpec(StrictModel):
    """Distillation of FLoRA's optical prior into its SAR path."""

    weight: Weight = Field(0.0, description="Weight of the per-scale feature alignment loss.")
    seg: Weight = Field(
        0.0,
        description="Weight of the distillation of the fused (SAR + optical prior) segmentation into the SAR-alone one on the same batch (temperature KD); needs model.sar_alone_pass.",
    )
    temperature: float = Field(
        2.0, gt=0, description="Temperature of the `seg` distillation's soft targets."
    )


class GanLossSpec(StrictModel):
    """CycleGAN terms."""

    adversarial: Weight = Field(0.0, description="LSGAN adversarial weight.")
    cycle: Weight = Field(0.0, description="Cycle-consistency weight (lambda).")
    identity: Weight = Field(
        0.0,
        description="Identity loss weight (absolute; CycleGAN's default is 0.5 * cycle); needs model.sar_channels == number of EO bands.",
    )


def _section(what: str) -> str:
    """The description of a weighted section: what it holds and how defaults apply."""
    return (
        f"{what} A section that names any weight gets exactly the weights it names (the "
        "others are 0); a section that names none gets the model family's defaults. "
        "Parameters (not weights) never count as naming a term."
    )


class LossSpec(StrictModel):
    """Weights of every loss term, per section (seg, rec, distill, gan).

    Explicit beats merged: naming any weight of a section replaces the family's defaults
    for that section; a section the spec does not name takes the family's defaults. Terms
    the family does not read must stay 0.
    """

    seg: SegLossSpec = Field(
        default_factory=SegLossSpec, description=_section("Segmentation terms.")
    )
    rec: RecLossSpec = Field(
        default_factory=RecLossSpec, description=_section("Reconstruction terms.")
    )
    distill: FeatureDistillSpec = Field(
        default_factory=FeatureDistillSpec,
        description=_section("Feature distillation (FLoRA)."),
    )
    gan: GanLossSpec = Field(default_factory=GanLossSpec, description=_section("CycleGAN terms."))
    decouple: Literal["none", "stopgrad", "pcgrad"] = Field(
        "none",
        description="FLoRA gradient decoupling in the shared encoder: none, stop-gradient of one branch, or PCGrad projection.",
    )
    stopgrad_branch: Literal["seg", "rec"] = Field(
        "rec",
        description="With decouple=stopgrad: the branch whose gradient does not reach the shared encoder.",
    )


def _sections() -> dict[str, type[StrictModel]]:
    """`LossSpec`'s weighted sections by name: its fields whose type is a section model."""
    out: dict[str, type[StrictModel]] = {}
    for name, info in LossSpec.model_fields.items():
        cls = info.annotation
        if isinstance(cls, type) and issubclass(cls, StrictModel):
            out[name] = cls
    return out


def weight_names(section: type[BaseModel]) -> tuple[str, ...]:
    """The loss terms of a section: its fields typed `Weight`, in declaration order."""
    return tuple(name for name, info in section.model_fields.items() if is_weight(info))


# The weighted sections of `loss` and the terms of each, derived from the fields above.
LOSS_SECTIONS: dict[str, type[StrictModel]] = _sections()
WEIGHT_FIELDS: dict[str, tuple[str, ...]] = {
    section: weight_names(cls) for section, cls in LOSS_SECTIONS.items()
}
# Every term as "section.term" (the spec path without the leading "loss.").
TERM_PATHS: tuple[str, ...] = tuple(
    f"{section}.{name}" for section, names in WEIGHT_FIELDS.items() for name in names
)


def active_weights(section: BaseModel) -> dict[str, float]:
    """The terms of a section instance with a weight > 0, by name, in declaration order."""
    return {
        name: weight
        for name in weight_names(type(section))
        if (weight := float(getattr(section, name))) > 0
    }


RULE = (
    "naming a term in a section replaces the family's defaults for that section "
    "(explicit beats merged)"
)


@dataclass(frozen=True)
class FamilyLoss:
    """The loss terms a model family reads and the weights it trains with by default.

    Declared once per family, beside its fields (``FloraSpec.losses``, ...). A loss
    section the spec does not name gets `defaults[section]`; a section the spec names a
    weight of gets exactly the weights it names, the others 0 (`resolve_loss`). A non-zero
    weight of a term the family does not read is refused (a silently ignored weight would
    make a sweep search nothing).

    Args:
        reads: the terms the family reads: ``"seg"`` (every term of the section, including
            terms added later) or ``"seg.dice"`` (one term).
        defaults: section -> {term: weight}: the seed defaults of the family (SYSTEMS.md).

    Raises:
        ValueError: an entry names no section or term, or a default is not read.
    """

    reads: tuple[str, ...]
    defaults: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    terms: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        terms: set[str] = set()
        for entry in self.reads:
            if entry in WEIGHT_FIELDS:
                terms.update(f"{entry}.{name}" for name in WEIGHT_FIELDS[entry])
            elif entry in TERM_PATHS:
                terms.add(entry)
            else:
                raise ValueError(f"FamilyLoss.reads: no loss section or term {entry!r}")
        object.__setattr__(self, "terms", frozenset(terms))
        for section, values in self.defaults.items():
            unread = [f"{section}.{name}" for name in values if f"{section}.{name}" not in terms]
            if unread:
                raise ValueError(f"FamilyLoss.defaults: {unread} are not among the terms read")

    def described(self, *sections: str) -> str:
        """The defaults of `sections` for error messages, e.g. ``loss.seg: {'dice': 1.0}``."""
        return ", ".join(f"loss.{s}: {dict(self.defaults.get(s, {}))}" for s in sections)

    def nothing_weighted(self, *sections: str) -> ValueError:
        """The error for `sections` none of whose terms has a weight > 0, stating the rule."""
        where = f"loss.{sections[0]}" if len(sections) == 1 else "loss"
        what = " or ".join(f"loss.{s}" for s in sections)
        return ValueError(
            f"{where}: no term of {what} has a weight > 0; {RULE}: the family's defaults are "
            f"{self.described(*sections)}"
        )


def names_a_weight(section: str, given: Mapping[str, Any]) -> bool:
    """Whether raw section data names any weight (non-weight parameters do not count)."""
    return any(key in WEIGHT_FIELDS.get(section, ()) for key in given)


def resolve_loss(loss: Mapping[str, Any] | None, family: FamilyLoss) -> dict[str, Any]:
    """Raw `loss` data with the family's defaults in every section that names no weight.

    Explicit beats merged: a section that names any weight keeps exactly the weights it
    names (the others take their field default, 0); a section that is absent, or names only
    parameters (``tversky_alpha``, ...), gets the family's default weights beside them.

    Args:
        loss: the raw `loss` mapping of a spec (None when the spec has none).
        family: the model family's `FamilyLoss`.

    Returns:
        A new mapping; `loss` is not changed.
    """
    out: dict[str, Any] = copy.deepcopy(dict(loss or {}))
    for section, values in family.defaults.items():
        given = out.get(section)
        if given is None:
            out[section] = dict(values)
        elif isinstance(given, Mapping) and not names_a_weight(section, given):
            out[section] = {**values, **given}
    return out
