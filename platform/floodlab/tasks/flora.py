"""FLoRA task: joint SAR->RGB translation and flood segmentation with an optical teacher."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import Metric

from floodlab.data import sample
from floodlab.errors import SpecError
from floodlab.losses import (
    FeatureDistillation,
    all_reduce_grads,
    kd_binary_loss,
    lsgan_discriminator_loss,
    no_sync,
    pcgrad_backward,
)
from floodlab.losses.perceptual import load_lpips
from floodlab.metrics import LossMeans, ReconstructionMetrics, SegmentationMetrics, keys
from floodlab.models import FloraModel, build_flora, build_patchgan
from floodlab.specs import ExperimentSpec, FloraSpec
from floodlab.tasks import panels as draw
from floodlab.tasks.base import Batch, StepContext, Task
from floodlab.tasks.common import (
    batch_valid,
    build_optimizer,
    detached,
    fooling_loss,
    full_precision,
    target_valid,
    to_numpy,
    total,
    unwrap,
    weighted_terms,
)
from floodlab.tasks.registry import build_model, register_family

logger = logging.getLogger(__name__)

SAR_ALONE = "sar_alone"  # prefix of the SAR-alone pass's loss terms


@register_family(FloraSpec, model=build_flora)
class FloraTask(Task):
    """FLoRA: SAR encoder + optical teacher + fusion latent + translation/segmentation decoders.

    Networks: ``nets["model"]`` (the `FloraModel`), ``nets["distill"]`` (the per-scale
    1x1 projections of the feature distillation, when `loss.distill.weight` > 0) and
    ``nets["disc"]`` (a 70x70 PatchGAN on the translation, when `model.discriminator`).
    Optimisers: "main" (model + projections) and "d" (discriminator, lr `optim.d_lr`).

    Training step: with probability `model.optical_dropout` the batch is trained from SAR
    alone (``fuse_optical=False``; the optical prior is still given so the teacher provides
    distillation targets). The loss is

        seg:  dice, bce, boundary, focal_tversky, focal   (label-validity masked)
        rec:  charbonnier, ssim, fft, edge (+ g_adv, LSGAN vs the PatchGAN)
        distill: weight * mean_s MSE(proj_s(fused_s), teacher_s.detach())

    each weighted by its `loss.*` field and reported by name ("loss" is the sum; "d_adv"
    is the discriminator's own loss). `loss.decouple` keeps the seg and rec gradients apart
    in the shared encoder: "stopgrad" detaches the features before `loss.stopgrad_branch`
    (via the model's ``detach_branch``), "pcgrad" projects conflicting gradients on the
    shared parameters (SAR encoder, fusion and teacher; see `floodlab.losses.decoupling`).
    Translation targets are masked where any target band is not finite.

    With `model.sar_alone_pass`, a batch that fuses the prior is also decoded from SAR
    alone in the same forward; its seg and rec terms are added under ``sar_alone/<name>``,
    the feature distillation moves to the SAR-alone features (the ones inference uses), and
    ``distill_seg`` (weight `loss.distill.seg`) distils the fused segmentation into the
    SAR-alone one (temperature KD, the fused logits detached).

    Evaluation reports both regimes: SAR alone under the plain keys ("iou", "f1",
    "psnr", "ssim", ... what a deployment without optical data sees) and with the optical
    prior fused under ``with_optical/<key>``.

    Attributes:
        seg_metrics, rec_metrics: accumulators of the SAR-alone regime.
        optical_seg_metrics, optical_rec_metrics: accumulators with the optical prior.
    """

    find_unused_parameters = True

    def __init__(self, spec: ExperimentSpec):
        super().__init__(spec)
        m = spec.model
        if not isinstance(m, FloraSpec):
            raise TypeError(f"FloraTask needs model.kind 'flora', got {m.kind!r}")
        if m.num_classes != 1:
            raise SpecError(
                [
                    f"model.num_classes: FLoRA segments a binary flood mask; set it to 1 (got {m.num_classes})"
                ]
            )
        # `FloraSpec.check` guarantees a weighted seg or pixel rec term (both under PCGrad).
        loss = spec.loss
        model = build_model(m)
        assert isinstance(model, FloraModel)
        self.nets["model"] = model
        if loss.distill.weight > 0:
            self.nets["distill"] = FeatureDistillation(model.fused_channels, model.teacher_channels)
        if m.discriminator:
            self.nets["disc"] = build_patchgan(m.out_channels)
        self.g_adv_weight = loss.rec.adversarial if m.discriminator else 0.0
        # LPIPS: a frozen network from a local file, outside `nets` (never trained,
        # wrapped or checkpointed).
        self.lpips = load_lpips(str(loss.rec.lpips_weights)) if loss.rec.lpips > 0 else None
        self.detach_branch = loss.stopgrad_branch if loss.decouple == "stopgrad" else None
        bands = list(spec.data.target_bands) or [f"band{i}" for i in range(m.out_channels)]
        # SAR alone (what deployment sees) and with the optical prior fused.
        self.seg_metrics = SegmentationMetrics()
        self.rec_metrics = ReconstructionMetrics(bands)
        self.optical_seg_metrics = SegmentationMetrics()
        self.optical_rec_metrics = ReconstructionMetrics(bands)
        self._regimes: dict[str, tuple[SegmentationMetrics, ReconstructionMetrics]] = {
            "": (self.seg_metrics, self.rec_metrics),
            keys.WITH_OPTICAL: (self.optical_seg_metrics, self.optical_rec_metrics),
        }
        self.loss_means = LossMeans([keys.LOSS])

    # -- plumbing -------------------------------------------------------------------------
    def to(self, device: torch.device) -> FloraTask:
        """Move networks, the frozen LPIPS network and metric states to `device`."""
        super().to(device)
        if self.lpips is not None:
            self.lpips.to(device)
        return self

    def metric_states(self) -> Iterator[Metric]:
        """The metrics of both regimes and the loss means."""
        for seg, rec in self._regimes.values():
            yield seg
            yield rec
        yield self.loss_means

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """ "main" over the model and distillation projections; "d" over the discriminator."""
        opts = {"main": build_optimizer(self._main_parameters(), self.spec.optim)}
        if "disc" in self.nets:
            opts["d"] = build_optimizer(
                self.nets["disc"].parameters(), self.spec.optim, self.spec.optim.d_lr
            )
        return opts

    def _main_parameters(self) -> list[nn.Parameter]:
        return [p for name, net in self.nets.items() if name != "disc" for p in net.parameters()]

    def _shared_parameters(self) -> list[nn.Parameter]:
        """Parameters both task losses reach: SAR encoder, fusion and the optical teacher."""
        model = unwrap(self.nets["model"])
        assert isinstance(model, FloraModel)
        return [*model.shared_parameters(), *model.teacher_parameters()]

    # -- losses ---------------------------------------------------------------------------
    def _adversarial_on(self, epoch: int) -> bool:
        """Whether the GAN term (and the discriminator's update) is on in `epoch` (1-based)."""
        return self.g_adv_weight > 0 and epoch >= self.spec.loss.rec.adversarial_start_epoch

    def _loss_terms(
        self,
        out: dict[str, Any],
        batch: Batch,
        *,
        adversarial: bool = False,
        distill: bool = True,
    ) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
        """(seg terms, rec terms incl. g_adv when `adversarial`, other terms) for one
        forward's outputs. Validation leaves g_adv out, so val/loss compares across epochs."""
        target = batch[sample.TARGET]
        rec_valid = target_valid(target)
        seg = weighted_terms(
            "seg", self.spec.loss.seg, out["seg"].float(), batch[sample.MASK], batch_valid(batch)
        )
        rec = weighted_terms("rec", self.spec.loss.rec, out["rgb"].float(), target, rec_valid)
        if self.lpips is not None:
            keep = rec_valid.unsqueeze(1)
            zero = torch.zeros((), device=target.device)
            rec["lpips"] = (
                self.spec.loss.rec.lpips
                * self.lpips(
                    torch.where(keep, out["rgb"].float(), zero), torch.where(keep, target, zero)
                ).mean()
            )
        if adversarial:
            rec["g_adv"] = self.g_adv_weight * fooling_loss(self.nets["disc"], out["rgb"])
        other: dict[str, Tensor] = {}
        if distill and "distill" in self.nets and out["teacher"] is not None:
            other["distill"] = self.spec.loss.distill.weight * self.nets["distill"](
                out["fused"], out["teacher"]
            )
        return seg, rec, other

    # -- steps ----------------------------------------------------------------------------
    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, Tensor]:
        """Forward (optical prior dropped with probability `model.optical_dropout`),
        decoupled backward of the weighted losses, then the discriminator's step."""
        sar, optical = batch[sample.IMAGE], batch.get(sample.OPTICAL)
        p_drop = self.spec.model.optical_dropout  # type: ignore[union-attr]
        drop = optical is None or (p_drop > 0 and float(torch.rand(())) < p_drop)
        pcgrad = self.spec.loss.decouple == "pcgrad"
        adversarial = self._adversarial_on(ctx.epoch)
        # Under DDP, PCGrad projects each rank's own task gradients, so the automatic
        # all-reduce is suspended and the final gradients are averaged by hand.
        sync = no_sync(self.nets) if pcgrad else contextlib.nullcontext(False)
        paired = not drop and self.spec.model.sar_alone_pass  # type: ignore[union-attr]
        with sync as manual_reduce:
            with ctx.autocast():
                out = self.nets["model"](
                    sar,
                    optical,
                    fuse_optical=not drop,
                    detach_branch=self.detach_branch,
                    sar_alone_too=paired,
                )
            with full_precision(sar.device):
                # With the SAR-alone pass, the feature distillation is that pass's.
                seg, rec, other = self._loss_terms(
                    out, batch, adversarial=adversarial, distill=not paired
                )
                if paired:
                    other = self._sar_alone_terms(out, batch, seg, rec)
                terms = {**seg, **rec, **other}
                loss = total(terms)
            if pcgrad:
                pcgrad_backward(
                    lambda x: ctx.backward(x, "main"),
                    loss,
                    total(seg),
                    total(rec),
                    self._shared_parameters(),
                )
            else:
                ctx.backward(loss, "main")
        if manual_reduce:
            all_reduce_grads(self._main_parameters())
        ctx.step("main")
        terms[keys.LOSS] = loss
        if adversarial:
            terms["d_adv"] = self._discriminator_step(
                out["rgb"].detach(), batch[sample.TARGET], ctx
            )
        return detached(terms)

    def _sar_alone_terms(
        self,
        out: dict[str, Any],
        batch: Batch,
        seg: dict[str, Tensor],
        rec: dict[str, Tensor],
    ) -> dict[str, Tensor]:
        """Add the SAR-alone pass's seg and rec terms to `seg` and `rec` (as
        ``sar_alone/<name>``) and return the distillation terms on that pass: the feature
        alignment to the teacher and, with `loss.distill.seg`, the fused prediction's KD."""
        alone = {**out["sar_alone"], "teacher": out["teacher"]}
        a_seg, a_rec, other = self._loss_terms(alone, batch)
        seg.update({f"{SAR_ALONE}/{k}": v for k, v in a_seg.items()})
        rec.update({f"{SAR_ALONE}/{k}": v for k, v in a_rec.items()})
        d = self.spec.loss.distill
        if d.seg > 0:
            other["distill_seg"] = d.seg * kd_binary_loss(
                alone["seg"].float(), out["seg"].float(), d.temperature, batch_valid(batch)
            )
        return other

    def _discriminator_step(self, fake: Tensor, real: Tensor, ctx: StepContext) -> Tensor:
        """LSGAN discriminator update on real targets vs detached translations."""
        disc = self.nets["disc"]
        with ctx.autocast():
            real_logits = disc(torch.nan_to_num(real))
            fake_logits = disc(fake)
        with full_precision(fake.device):
            d_loss = lsgan_discriminator_loss(real_logits, fake_logits)
        ctx.backward(d_loss, "d")
        ctx.step("d")
        return d_loss

    @torch.no_grad()
    def eval_step(self, batch: Batch) -> dict[str, Tensor]:
        """SAR-alone forward (metrics under plain keys, loss terms) and, when the batch has
        an optical prior, a fused forward (metrics under ``with_optical/``)."""
        sar, optical = batch[sample.IMAGE], batch.get(sample.OPTICAL)
        model = self.nets["model"]
        # fuse_optical=False is the SAR-alone path; the teacher still runs for the
        # distillation term of the validation loss.
        alone = model(sar, optical, fuse_optical=False)
        with full_precision(sar.device):
            seg, rec, other = self._loss_terms(alone, batch)
            terms = {**seg, **rec, **other}
            terms[keys.LOSS] = total(terms)
            self.loss_means.update({keys.LOSS: terms[keys.LOSS]})
            self._update_metrics("", alone, batch)
        if optical is not None:
            fused = model(sar, optical, fuse_optical=True)
            with full_precision(sar.device):
                self._update_metrics(keys.WITH_OPTICAL, fused, batch)
        return detached(terms)

    def _update_metrics(self, regime: str, out: dict[str, Any], batch: Batch) -> None:
        target = batch[sample.TARGET]
        seg_metrics, rec_metrics = self._regimes[regime]
        seg_metrics.update(
            torch.sigmoid(out["seg"].float()), batch[sample.MASK], batch_valid(batch)
        )
        rec_metrics.update(out["rgb"].float(), torch.nan_to_num(target), target_valid(target))

    def compute_metrics(self) -> dict[str, float]:
        """SAR-alone metrics under plain keys, fused ones under ``with_optical/`` (omitted
        when no validation batch had an optical prior), and the mean loss."""
        out: dict[str, float] = {}
        with warnings.catch_warnings():
            # A regime without updates (no optical prior) warns; it is dropped below.
            warnings.simplefilter("ignore", UserWarning)
            for regime in ("", keys.WITH_OPTICAL):
                values = {
                    **self._regimes[regime][0].compute(),
                    **self._regimes[regime][1].compute(),
                }
                if regime and all(np.isnan(float(v)) for v in values.values()):
                    continue
                for key, value in values.items():
                    out[keys.with_optical(key) if regime else key] = float(value)
        out[keys.LOSS] = float(self.loss_means.compute()[keys.LOSS])
        return out

    @torch.no_grad()
    def predict(self, batch: Batch, *, with_optical: bool = False) -> dict[str, Tensor]:
        """``"prob"`` (B, 1, H, W) in [0, 1] and ``"rgb"`` (B, 3, H, W) in [0, 1].

        Args:
            batch: needs ``image``; ``optical`` is used only with `with_optical`.
            with_optical: fuse the batch's optical prior (when present); default SAR alone.
        """
        optical = batch.get(sample.OPTICAL) if with_optical else None
        was_training = self.nets.training
        self.eval()
        try:
            out = self.nets["model"](batch[sample.IMAGE], optical)
        finally:
            self.train(was_training)
        return {"prob": torch.sigmoid(out["seg"].float()), "rgb": out["rgb"].float()}

    def panels(self, batch: Batch, outputs: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """``segmentation`` (see `segmentation_grid`) and ``translation``: per sample the
        SAR composite, the optical prior, the predicted RGB and the target RGB (prediction
        and target share the target's stretch)."""
        n = min(self.spec.logging.num_images, batch[sample.IMAGE].shape[0])
        image = to_numpy(batch[sample.IMAGE][:n])
        bands = list(self.spec.data.image_bands)
        valid = batch_valid(batch)
        panels = {
            "segmentation": draw.segmentation_grid(
                image,
                bands,
                to_numpy(batch[sample.MASK][:n]),
                None if valid is None else valid[:n].cpu().numpy(),
                to_numpy(outputs["prob"][:n, 0]),
            )
        }
        target = to_numpy(batch[sample.TARGET][:n])
        rgb = to_numpy(outputs["rgb"][:n])
        optical = batch.get(sample.OPTICAL)
        optical_np = None if optical is None else to_numpy(optical[:n])
        target_bands = list(self.spec.data.target_bands)
        rows = []
        for i in range(n):
            row = [draw.input_composite(image[i], bands)]
            if optical_np is not None:
                row.append(
                    draw.optical_composite(optical_np[i], list(self.spec.data.optical_bands))
                )
            row += [
                draw.optical_composite(rgb[i], target_bands, ref=target[i]),
                draw.optical_composite(target[i], target_bands),
            ]
            rows.append(row)
        panels["translation"] = draw.grid(rows)
        return panels
