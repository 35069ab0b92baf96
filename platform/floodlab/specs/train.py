"""The `optim`, `schedule`, `trainer` and `distill` sections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from floodlab.specs.base import StrictModel

METRIC_PATTERN = r"^(train|val|test)/[A-Za-z0-9_./-]+$"


class OptimSpec(StrictModel):
    """Optimiser. GAN families build one per network group with the same settings."""

    name: Literal["adam", "adamw", "sgd"] = Field("adamw", description="Optimiser.")
    lr: float = Field(1e-3, gt=0.0, description="Learning rate.")
    d_lr: float | None = Field(
        None, gt=0.0, description="Discriminator learning rate (GANs); default: lr."
    )
    weight_decay: float = Field(1e-4, ge=0.0, description="Weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam betas.")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum.")

    @field_validator("betas")
    @classmethod
    def _betas(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"`0 <= beta < 1` must hold for both betas, but got {betas}")
        return betas


class ScheduleSpec(StrictModel):
    """Learning-rate schedule, stepped once per epoch."""

    kind: Literal["constant", "cosine", "cosine_warm_restarts", "plateau", "step"] = Field(
        "cosine", description="Schedule."
    )
    warmup_epochs: int = Field(0, ge=0, description="Linear warm-up epochs before the schedule.")
    eta_min: float = Field(1e-6, ge=0.0, description="Minimum learning rate (cosine kinds).")
    t0: int = Field(10, ge=1, description="Epochs of the first cosine cycle (warm restarts).")
    t_mult: int = Field(1, ge=1, description="Cycle-length multiplier (warm restarts).")
    step_size: int = Field(10, ge=1, description="Epochs between decays (step).")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="Decay factor (step).")
    monitor: str = Field(
        "val/loss", pattern=METRIC_PATTERN, description="Metric watched by plateau."
    )
    mode: Literal["min", "max"] = Field(
        "min", description="Whether the plateau metric should fall or rise."
    )
    factor: float = Field(0.5, gt=0.0, lt=1.0, description="LR multiplier on plateau.")
    patience: int = Field(3, ge=0, description="Epochs without improvement before plateau decays.")


class EarlyStoppingSpec(StrictModel):
    """Stop when a validation metric stops improving."""

    metric: str = Field(
        "val/iou", pattern=METRIC_PATTERN, description="Metric to watch, e.g. val/iou."
    )
    mode: Literal["min", "max"] = Field(
        "max", description="Whether the metric should rise or fall."
    )
    patience: int = Field(5, ge=1, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as improvement.")
    min_epochs: int = Field(
        0,
        ge=0,
        description="Never stop before this epoch: a model that starts by predicting one class (a flat metric for a few epochs) gets the time to leave that start.",
    )


class TrainerSpec(StrictModel):
    """How training runs: epochs, batch, workers, devices, precision, checkpoints, failures."""

    epochs: int = Field(20, ge=1, description="Training epochs.")
    batch_size: int = Field(8, ge=1, description="Samples per batch per worker.")
    num_workers: int = Field(1, ge=1, description="Ray Train DDP workers.")
    use_gpu: Literal["auto"] | bool = Field(
        "auto", description="auto: use GPUs when the cluster has them; true: require; false: CPU."
    )
    cpus_per_worker: float = Field(
        1.0, gt=0.0, description="Logical CPUs reserved per training worker."
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="Autocast precision on GPU (fp16 uses a gradient scaler); CPU runs fp32 unless bf16.",
    )
    grad_clip: float | None = Field(
        1.0, gt=0.0, description="Clip the global gradient norm to this value (None = off)."
    )
    ema_decay: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description=(
            "Keep an exponential moving average of the weights with this decay per optimiser "
            "step (warmed up as min(decay, (1 + n) / (10 + n)) after n steps); validation, "
            "checkpoint ranking, evaluate and predict then use the averaged weights. "
            "None = off."
        ),
    )
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="Early stopping; None = train all epochs."
    )
    checkpoint_every: int = Field(
        1, ge=1, description="Save a checkpoint every N epochs (and at the end)."
    )
    keep_checkpoints: int = Field(
        2, ge=1, description="Checkpoints kept, best first by `checkpoint_metric`."
    )
    checkpoint_metric: str = Field(
        "val/iou", pattern=METRIC_PATTERN, description="Metric that ranks checkpoints."
    )
    checkpoint_mode: Literal["min", "max"] = Field(
        "max", description="Whether a higher checkpoint metric is better."
    )
    max_failures: int = Field(
        1,
        ge=-1,
        description="Worker-group restarts from the last checkpoint after a failure (-1 = unlimited).",
    )
    eval_every: int = Field(1, ge=1, description="Validate every N epochs (and at the end).")
    limit_train_batches: int | None = Field(
        None, ge=1, description="Train at most this many batches per epoch (smoke runs)."
    )
    limit_val_batches: int | None = Field(
        None, ge=1, description="Validate on at most this many batches."
    )
    deterministic: bool = Field(
        False, description="Request deterministic torch algorithms (slower)."
    )


class TeacherRef(StrictModel):
    """A trained teacher: a run directory / run id, or a checkpoint file."""

    run: str | None = Field(
        None, description="Run id (runs/<experiment>/<run>) or run directory of the teacher."
    )
    checkpoint: str | None = Field(
        None, description="Path of a teacher checkpoint file (model weights)."
    )

    @model_validator(mode="after")
    def _one(self) -> TeacherRef:
        if (self.run is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of `run` or `checkpoint` for the teacher")
        return self


class DistillSpec(StrictModel):
    """Logit knowledge distillation (SAR-KD): L = alpha * L_KD + beta * L_supervised."""

    teacher: TeacherRef | None = Field(
        None, description="The frozen teacher; required when alpha > 0."
    )
    teacher_arch: Literal["unet", "pspnet"] | None = Field(
        None,
        description=(
            "Architecture of a teacher given as a checkpoint file (default unet). A teacher "
            "given as a run is built from that run's own spec, any segmentation family "
            "(sarkd, resunet, cloud_unet); when set, it must be that run's SAR-KD arch."
        ),
    )
    temperature: float = Field(
        4.0,
        gt=0.0,
        description="Softmax/sigmoid temperature T of the soft targets (loss scaled by T^2).",
    )
    alpha: float = Field(0.5, ge=0.0, description="Weight of the distillation term.")
    beta: float = Field(0.5, ge=0.0, description="Weight of the supervised term.")
