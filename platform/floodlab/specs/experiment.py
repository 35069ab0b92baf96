"""ExperimentSpec: one YAML file says what data, which model, which losses, how to train and tune."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field, model_validator

from floodlab.bands import CYCLEGAN_BAND_SETS
from floodlab.specs.base import StrictModel
from floodlab.specs.data import DataSpec
from floodlab.specs.loss import FAMILY_LOSS_DEFAULTS, FAMILY_LOSS_TERMS, WEIGHT_FIELDS, LossSpec
from floodlab.specs.model import (
    CloudUNetSpec,
    CycleGANSpec,
    FloraSpec,
    ModelSpec,
    SarKDSpec,
    input_channels,
)
from floodlab.specs.paths import closest, leaf_paths
from floodlab.specs.train import DistillSpec, OptimSpec, ScheduleSpec, TrainerSpec
from floodlab.specs.tune import TuneSpec


class LoggingSpec(StrictModel):
    """Where runs go and what TensorBoard shows."""

    root: str = Field(
        "runs",
        description="Root of run directories (a local folder or a URI such as s3://bucket/runs).",
    )
    tensorboard: bool = Field(True, description="Write TensorBoard events (rank 0 only).")
    image_every: int = Field(1, ge=0, description="Write image panels every N epochs (0 = never).")
    num_images: int = Field(4, ge=1, le=32, description="Samples per image panel.")
    log_every_n_steps: int = Field(
        10, ge=1, description="Write step-level training scalars every N steps."
    )


class ExperimentSpec(StrictModel):
    """A complete, validated experiment: data, model, losses, optimisation, training, sweep, logging."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Experiment name; runs go to <logging.root>/<name>/.",
    )
    description: str = Field("", description="Free text shown in summaries.")
    seed: int = Field(0, description="Global seed (model init, sampling, augmentation).")
    data: DataSpec = Field(description="Data section.")
    model: ModelSpec = Field(
        description="Model family and its hyperparameters (discriminated on `kind`)."
    )
    loss: LossSpec = Field(
        default_factory=LossSpec,
        description="Loss weights; unset terms take the family's seed defaults.",
    )
    distill: DistillSpec | None = Field(
        None, description="Logit distillation from a trained teacher (SAR-KD students)."
    )
    optim: OptimSpec = Field(default_factory=OptimSpec, description="Optimiser.")
    schedule: ScheduleSpec = Field(
        default_factory=ScheduleSpec, description="Learning-rate schedule."
    )
    trainer: TrainerSpec = Field(default_factory=TrainerSpec, description="Training settings.")
    tune: TuneSpec | None = Field(
        None, description="Hyperparameter sweep; None for a single training run."
    )
    logging: LoggingSpec = Field(
        default_factory=LoggingSpec, description="Run directories and TensorBoard."
    )

    @model_validator(mode="before")
    @classmethod
    def _family_loss_defaults(cls, data: Any) -> Any:
        """Fill loss weights the spec leaves unset with its family's seed defaults."""
        if not isinstance(data, dict):
            return data
        model = data.get("model")
        kind = model.get("kind") if isinstance(model, dict) else getattr(model, "kind", None)
        defaults = FAMILY_LOSS_DEFAULTS.get(kind or "")
        loss = data.get("loss")
        if defaults is None or not (loss is None or isinstance(loss, dict)):
            return data
        merged: dict[str, Any] = copy.deepcopy(loss or {})
        for section, values in defaults.items():
            given = merged.get(section)
            if given is None:
                merged[section] = dict(values)
            elif isinstance(given, dict):
                merged[section] = {**values, **given}
        return {**data, "loss": merged}

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentSpec:
        m, d = self.model, self.data
        kind = m.kind
        # Loss terms the family does not read must stay zero (a silently ignored weight
        # would make a sweep search nothing).
        used = FAMILY_LOSS_TERMS[kind]
        for section, names in WEIGHT_FIELDS.items():
            for name in names:
                path = f"{section}.{name}"
                if getattr(getattr(self.loss, section), name) > 0 and path not in used:
                    raise ValueError(
                        f"loss.{path}: not used by model kind '{kind}'; set it to 0. "
                        f"Terms this family uses: {sorted(used)}"
                    )
        if self.loss.decouple != "none" and kind != "flora":
            raise ValueError(
                f"loss.decouple: {self.loss.decouple!r} applies to FLoRA only, but model.kind={kind!r}"
            )
        # Bands must match the model's inputs.
        expected = 1 if d.band_agnostic else input_channels(m)
        if len(d.image_bands) != expected and not d.band_agnostic:
            raise ValueError(
                f"data.image_bands: `len(data.image_bands) == model input channels` must hold, but got "
                f"(data.image_bands={d.image_bands}, model input channels={expected})"
            )
        if d.band_agnostic and input_channels(m) != 1:
            raise ValueError(
                "model.in_channels: data.band_agnostic=true feeds single-channel samples, so model.in_channels must be 1"
            )
        if isinstance(m, FloraSpec):
            if len(d.optical_bands) != m.optical_channels:
                raise ValueError(
                    f"data.optical_bands: FLoRA's teacher reads model.optical_channels={m.optical_channels} bands, "
                    f"but data.optical_bands={d.optical_bands}"
                )
            if len(d.target_bands) != m.out_channels:
                raise ValueError(
                    f"data.target_bands: FLoRA translates to model.out_channels={m.out_channels} bands, but data.target_bands={d.target_bands}"
                )
            if self.loss.rec.adversarial > 0 and not m.discriminator:
                raise ValueError(
                    "model.discriminator: loss.rec.adversarial > 0 needs model.discriminator: true"
                )
        if isinstance(m, CycleGANSpec):
            want = list(CYCLEGAN_BAND_SETS[m.bands])
            if d.target_bands != want:
                raise ValueError(
                    f"data.target_bands: model.bands={m.bands!r} translates to {want}, but data.target_bands={d.target_bands}"
                )
            if d.label != "none":
                raise ValueError("data.label: CycleGAN trains without labels; set data.label: none")
            if self.loss.gan.identity > 0 and m.sar_channels != len(want):
                # Identity feeds EO images to the SAR->EO generator and SAR to EO->SAR.
                raise ValueError(
                    f"loss.gan.identity: the identity term G_ab(EO) ~ EO needs as many SAR as EO channels, "
                    f"but got (model.sar_channels={m.sar_channels}, EO bands of model.bands={m.bands!r}: {len(want)}); "
                    "set loss.gan.identity: 0"
                )
        if isinstance(m, CloudUNetSpec) and d.label != "cloud":
            raise ValueError("data.label: the cloud U-Net needs data.label: cloud")
        if isinstance(m, SarKDSpec):
            if self.distill is not None and self.distill.alpha > 0 and self.distill.teacher is None:
                raise ValueError(
                    "distill.teacher: a KD student needs a teacher: set distill.teacher.run or distill.teacher.checkpoint "
                    "(or distill.alpha: 0 to train without distillation)"
                )
            if self.distill is not None and m.is_teacher:
                raise ValueError(
                    f"distill: model.arch={m.arch!r} is a teacher; distill applies to students only"
                )
        elif self.distill is not None:
            raise ValueError(
                f"distill: distillation applies to SAR-KD students (model.kind: sarkd), not model.kind={kind!r}"
            )
        # Search-space paths must exist in this spec.
        if self.tune is not None:
            valid = leaf_paths(self)
            for path in self.tune.space:
                if path.startswith("tune.") or path not in valid:
                    hint = closest(path, [p for p in valid if not p.startswith("tune.")])
                    suggestion = f"; did you mean '{hint}'?" if hint else ""
                    raise ValueError(f"tune.space.{path}: no such path in this spec{suggestion}")
        return self
