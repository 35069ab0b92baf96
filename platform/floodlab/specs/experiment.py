"""ExperimentSpec: one YAML file says what data, which model, which losses, how to train and tune."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from floodlab.specs.base import StoreLocation, StrictModel
from floodlab.specs.data import DataSpec
from floodlab.specs.loss import TERM_PATHS, LossSpec, resolve_loss
from floodlab.specs.model import MODEL_KINDS, ModelSpec, family_spec, input_channels
from floodlab.specs.paths import closest, leaf_paths
from floodlab.specs.tracking import MlflowSpec
from floodlab.specs.train import DistillSpec, OptimSpec, ScheduleSpec, TrainerSpec
from floodlab.specs.tune import TuneSpec


class LoggingSpec(StrictModel):
    """Where runs go, what TensorBoard shows, and optional MLflow tracking."""

    root: StoreLocation = Field(
        "runs",
        description="Root of run and sweep directories: a local folder, a folder every node mounts at the same path, or a URL on object storage (s3://bucket/runs; endpoint and credentials from the storage library's own environment, e.g. AWS_ENDPOINT_URL).",
    )
    tensorboard: bool = Field(True, description="Write TensorBoard events (rank 0 only).")
    image_every: int = Field(1, ge=0, description="Write image panels every N epochs (0 = never).")
    num_images: int = Field(4, ge=1, le=32, description="Samples per image panel.")
    log_every_n_steps: int = Field(
        10, ge=1, description="Write step-level training scalars every N steps."
    )
    mlflow: MlflowSpec = Field(
        default_factory=MlflowSpec,
        description="MLflow tracking beside TensorBoard (off unless tracking_uri is set).",
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
        description="Loss weights. Per section (seg, rec, distill, gan): a section that names any weight gets exactly the weights it names (the others are 0); a section the spec does not name gets the model family's defaults (explicit beats merged).",
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
        default_factory=LoggingSpec, description="Run directories, TensorBoard and MLflow."
    )

    @model_validator(mode="before")
    @classmethod
    def _family_loss_defaults(cls, data: Any) -> Any:
        """Give every loss section that names no weight its family's defaults
        (`floodlab.specs.loss.resolve_loss`: explicit beats merged)."""
        if not isinstance(data, dict):
            return data
        model = data.get("model")
        kind = model.get("kind") if isinstance(model, dict) else getattr(model, "kind", None)
        loss = data.get("loss")
        if kind not in MODEL_KINDS or not (loss is None or isinstance(loss, dict)):
            return data
        return {**data, "loss": resolve_loss(loss, family_spec(kind).losses)}

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentSpec:
        """Checks every family shares, then the family's own (`model.check`)."""
        m, d = self.model, self.data
        kind = m.kind
        # Loss terms the family does not read must stay zero (a silently ignored weight
        # would make a sweep search nothing).
        reads = m.losses.terms
        for path in TERM_PATHS:
            section, name = path.split(".")
            if getattr(getattr(self.loss, section), name) > 0 and path not in reads:
                raise ValueError(
                    f"loss.{path}: not used by model kind '{kind}'; set it to 0. "
                    f"Terms this family uses: {sorted(reads)}"
                )
        if self.loss.decouple != "none" and not m.decouples:
            raise ValueError(
                f"loss.decouple: {self.loss.decouple!r} applies to model.kind {_kinds('decouples')} only, "
                f"but model.kind={kind!r}"
            )
        if self.distill is not None and not m.takes_teacher:
            raise ValueError(
                f"distill: distillation from a teacher applies to model.kind {_kinds('takes_teacher')} "
                f"(students), not model.kind={kind!r}"
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
        m.check(self)
        # Search-space paths must exist in this spec.
        if self.tune is not None:
            valid = leaf_paths(self)
            for path in self.tune.space:
                if path.startswith("tune.") or path not in valid:
                    hint = closest(path, [p for p in valid if not p.startswith("tune.")])
                    suggestion = f"; did you mean '{hint}'?" if hint else ""
                    raise ValueError(f"tune.space.{path}: no such path in this spec{suggestion}")
        return self


def _kinds(flag: str) -> str:
    """The model kinds whose spec class sets the boolean class attribute `flag`, quoted."""
    return " or ".join(repr(k) for k in MODEL_KINDS if getattr(family_spec(k), flag))
