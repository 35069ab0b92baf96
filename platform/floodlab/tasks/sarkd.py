"""SAR-KD task: supervised teachers and lightweight students distilled from a frozen teacher."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from floodlab.data import sample
from floodlab.errors import FloodlabError, SpecError, TrainingError
from floodlab.losses import kd_loss
from floodlab.metrics import keys
from floodlab.models import build_sarkd, build_sarkd_from_spec, load_weights
from floodlab.specs import ExperimentSpec, SarKDSpec
from floodlab.tasks.base import Batch, StepContext
from floodlab.tasks.common import batch_valid, detached, full_precision, total, weighted_terms
from floodlab.tasks.registry import register_family
from floodlab.tasks.segmentation import SegmentationTask

logger = logging.getLogger(__name__)


def load_teacher(spec: ExperimentSpec, runs_root: str | Path = "runs") -> nn.Module:
    """Build the frozen teacher of a SAR-KD student and load its trained weights.

    A teacher given as a run (`spec.distill.teacher.run`, under `runs_root`) is rebuilt from
    that run's own spec and best checkpoint, so any segmentation family can teach: a SAR-KD
    U-Net or PSPNet, or the best ResUNet of a sweep. Its input must be the student's
    (`data.image_bands` and `data.normalize` equal), because both see the same batches. A
    teacher given as a checkpoint file (`spec.distill.teacher.checkpoint`, a floodlab
    checkpoint ``{"task": {"model": state_dict}, ...}`` or a bare state_dict) is built as
    ``build_sarkd(distill.teacher_arch or "unet", spec.model.in_channels)``. Files are read
    with ``torch.load(weights_only=True)``.

    Args:
        spec: the student's experiment spec.
        runs_root: root of run directories searched for ``distill.teacher.run``.

    Returns:
        The teacher network (logits (B, 1, H, W)) in eval mode with gradients disabled, on
        the CPU.

    Raises:
        TrainingError: no teacher is configured; its run, checkpoint or weights are missing
            or do not fit; or a teacher run that cannot teach this student (not a
            segmentation run, other input bands or normalisation, another architecture
            than `distill.teacher_arch`).
    """
    distill = spec.distill
    if distill is None or distill.teacher is None:
        raise TrainingError(
            "distill.teacher: this SAR-KD student distils from a teacher but none is set; "
            "give distill.teacher.run (e.g. sarkd_teacher_unet/latest) or distill.teacher.checkpoint"
        )
    ref = distill.teacher
    if ref.checkpoint is None:
        teacher = _teacher_from_run(spec, str(ref.run), runs_root)
    else:
        path, field = Path(ref.checkpoint), "distill.teacher.checkpoint"
        if not path.is_file():
            raise TrainingError(
                f"{field}: teacher checkpoint '{path}' does not exist; train the teacher first "
                "or give the path of an existing checkpoint"
            )
        arch = distill.teacher_arch or "unet"
        teacher = build_sarkd(arch, getattr(spec.model, "in_channels", 1))
        try:
            load_weights(teacher, path, field=field)
        except FloodlabError as exc:
            raise TrainingError(
                f"{exc} (the teacher is built as distill.teacher_arch={arch!r}; "
                "it must match the architecture the checkpoint was trained with)"
            ) from exc
        logger.info("loaded SAR-KD teacher %s from %s", arch, path)
    teacher.eval().requires_grad_(False)
    return teacher


def _teacher_from_run(spec: ExperimentSpec, ref: str, runs_root: str | Path) -> nn.Module:
    """The network of the segmentation run `ref`, with its best weights, checked to take
    the student's input (see `load_teacher`)."""
    from floodlab.predict.restore import load_trained

    field = "distill.teacher.run"
    try:
        trained = load_trained(ref, root=runs_root, checkpoint="best")
    except FloodlabError as exc:
        raise TrainingError(
            f"{field}: cannot load the teacher run {ref!r} under {runs_root}/ ({exc}); "
            "train the teacher first (e.g. `floodlab train experiments/sarkd_teacher_unet.yaml`) "
            "or point distill.teacher.checkpoint at its checkpoint file"
        ) from exc
    teacher_spec, where = trained.spec, trained.run.where
    kind = teacher_spec.model.kind
    if not isinstance(trained.task, SegmentationTask):
        raise TrainingError(
            f"{field}: {where} is a {kind} run; a teacher must be a segmentation run whose "
            "network gives one flood logit per pixel (sarkd, resunet, cloud_unet)"
        )
    arch = spec.distill.teacher_arch if spec.distill is not None else None
    teacher_arch = getattr(teacher_spec.model, "arch", None)
    if arch is not None and (kind != "sarkd" or teacher_arch != arch):
        found = f"a sarkd {teacher_arch}" if kind == "sarkd" else f"a {kind}"
        raise TrainingError(
            f"distill.teacher_arch: {arch!r}, but the teacher run {where} trained {found} "
            "network; leave teacher_arch out (a run's architecture comes from its spec)"
        )
    for name in ("image_bands", "normalize"):
        mine, theirs = getattr(spec.data, name), getattr(teacher_spec.data, name)
        if mine != theirs:
            raise TrainingError(
                f"data.{name}: the student's is {mine!r} but the teacher run {where} trained "
                f"on {theirs!r}; the teacher sees the student's batches, so set the same "
                f"data.{name} or choose a teacher trained on it"
            )
    logger.info(
        "loaded the %s teacher of run %s (epoch %d, %s)",
        kind,
        where,
        trained.epoch,
        trained.checkpoint,
    )
    return trained.task.nets["model"]


@register_family(SarKDSpec, model=build_sarkd_from_spec)
class SarKDTask(SegmentationTask):
    """SAR-KD: MobileNetV2 U-Net / PSPNet teachers, MLP baseline, UnetLight / PSPMixer students.

    Without `spec.distill` (teachers, baselines) the loss is the weighted `loss.seg` terms
    (Focal-Tversky by default). A student with `spec.distill` trains on

        L = alpha * KD_T(student, teacher) + beta * sum_k w_k * L_k(student, label)

    where KD_T is the temperature-T binary KD loss (`floodlab.losses.kd_binary_loss`,
    scaled by T^2) and the supervised terms are the non-zero `loss.seg` terms
    (Focal-Tversky with alpha = 0.30, beta = 0.70 by default). Both parts are masked by
    label validity. The teacher is frozen (eval mode, no gradients) and lives outside
    `nets`, so it is neither optimised nor checkpointed; `to()` moves it with the task.

    Args:
        spec: the experiment spec (model.kind = "sarkd").
        teacher: the trained teacher; when None and distillation is on, it is loaded with
            `load_teacher(spec, spec.logging.root)`.
    """

    def __init__(self, spec: ExperimentSpec, teacher: nn.Module | None = None):
        super().__init__(spec)
        d = spec.distill
        self.distilling = d is not None and d.alpha > 0
        self.alpha = d.alpha if d is not None else 0.0
        self.beta = d.beta if d is not None else 1.0
        self.temperature = d.temperature if d is not None else 1.0
        if d is not None and self.alpha == 0 and self.beta == 0:
            raise SpecError(
                [
                    "distill.alpha, distill.beta: both are 0, so the student has no loss; set at least one > 0"
                ]
            )
        self.teacher: nn.Module | None = None
        if self.distilling:
            if teacher is None:
                teacher = load_teacher(spec, spec.logging.root)
            teacher.eval().requires_grad_(False)
            self.teacher = teacher.to(self.device)

    def to(self, device: torch.device) -> SarKDTask:
        """Move networks, the frozen teacher and metric states to `device`."""
        super().to(device)
        if self.teacher is not None:
            self.teacher.to(device)
        return self

    def train(self, mode: bool = True) -> None:
        """Train/eval mode of the student; the teacher always stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()

    @torch.no_grad()
    def teacher_logits(self, image: Tensor) -> Tensor | None:
        """The frozen teacher's logits (B, 1, H, W), or None without distillation."""
        return None if self.teacher is None else self.teacher(image)

    def loss_terms(
        self, logits: Tensor, batch: Batch, teacher: Tensor | None = None
    ) -> dict[str, Tensor]:
        """alpha * KD (when distilling) + beta * weighted supervised terms, and their sum."""
        valid = batch_valid(batch)
        terms: dict[str, Tensor] = {}
        if self.beta > 0:
            terms = weighted_terms(
                "seg", self.spec.loss.seg, logits.float(), batch[sample.MASK], valid, self.beta
            )
        if self.distilling and teacher is not None:
            terms["kd"] = self.alpha * kd_loss(
                logits.float(), teacher.float(), self.temperature, valid
            )
        terms[keys.LOSS] = total(terms)
        return terms

    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, Tensor]:
        """Teacher (no grad) and student forwards under autocast, fp32 losses, one step."""
        image = batch[sample.IMAGE]
        with ctx.autocast():
            teacher = self.teacher_logits(image)
            logits = self.nets["model"](image)
        with full_precision(logits.device):
            terms = self.loss_terms(logits, batch, teacher)
        ctx.backward(terms[keys.LOSS], "main")
        ctx.step("main")
        return detached(terms)

    @torch.no_grad()
    def eval_step(self, batch: Batch) -> dict[str, Tensor]:
        """Student forward (and the teacher's for the KD term), metrics, loss terms."""
        image = batch[sample.IMAGE]
        logits = self.nets["model"](image)
        teacher = self.teacher_logits(image)
        with full_precision(logits.device):
            terms = self.loss_terms(logits, batch, teacher)
            self.seg_metrics.update(
                torch.sigmoid(logits.float()), batch[sample.MASK], batch_valid(batch)
            )
            self.loss_means.update({keys.LOSS: terms[keys.LOSS]})
        return detached(terms)
