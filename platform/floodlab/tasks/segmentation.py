"""Shared base of the single-network binary segmentation tasks (ResUNet, SAR-KD, cloud U-Net)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from floodlab.data import sample
from floodlab.errors import SpecError
from floodlab.metrics import LossMeans, SegmentationMetrics, keys
from floodlab.specs import ExperimentSpec
from floodlab.tasks import panels as draw
from floodlab.tasks.base import Batch, StepContext, Task
from floodlab.tasks.common import (
    batch_valid,
    build_optimizer,
    detached,
    full_precision,
    to_numpy,
    total,
    weighted_terms,
)
from floodlab.tasks.registry import build_model

logger = logging.getLogger(__name__)


class SegmentationTask(Task):
    """One network ``nets["model"]`` mapping ``image`` to binary logits (B, 1, H, W).

    Loss: the weighted sum of the non-zero `loss.seg` terms, masked by ``valid`` (the
    family's spec check refuses a spec without one).
    Metrics: IoU, mean IoU, F1, precision, recall and pixel accuracy of the positive class
    from the accumulated confusion matrix (`seg_metrics`), plus the mean loss.

    Attributes:
        seg_metrics: the accumulated `SegmentationMetrics` (its `confusion_matrix()` is the
            aggregated confusion matrix for reports).
    """

    def __init__(self, spec: ExperimentSpec):
        super().__init__(spec)
        num_classes = getattr(spec.model, "num_classes", 1)
        if num_classes != 1:
            raise SpecError(
                [
                    f"model.num_classes: the {spec.model.kind} task trains a binary mask with one logit; set model.num_classes: 1 (got {num_classes})"
                ]
            )
        # The family's `check` guarantees a segmentation term with a weight > 0.
        self.nets["model"] = build_model(spec.model)
        self.seg_metrics = SegmentationMetrics()
        self.loss_means = LossMeans([keys.LOSS])

    # -- plumbing -------------------------------------------------------------------------
    def metric_states(self) -> tuple[Metric, ...]:
        """The confusion matrix (IoU, mIoU, F1, precision, recall, accuracy) and the mean
        loss."""
        return self.seg_metrics, self.loss_means

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimiser, "main", over the model."""
        return {"main": build_optimizer(self.nets["model"].parameters(), self.spec.optim)}

    @contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Eval mode for the block, restoring the previous mode afterwards."""
        was_training = self.nets.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    # -- losses ---------------------------------------------------------------------------
    def loss_terms(self, logits: Tensor, batch: Batch) -> dict[str, Tensor]:
        """Weighted loss terms and their sum under "loss" for (B, 1, H, W) logits."""
        terms = weighted_terms(
            "seg", self.spec.loss.seg, logits.float(), batch[sample.MASK], batch_valid(batch)
        )
        terms[keys.LOSS] = total(terms)
        return terms

    # -- steps ----------------------------------------------------------------------------
    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, Tensor]:
        """Forward under autocast, fp32 losses, one backward and step of "main"."""
        with ctx.autocast():
            logits = self.nets["model"](batch[sample.IMAGE])  # (B, 1, H, W)
        with full_precision(logits.device):
            terms = self.loss_terms(logits, batch)
        ctx.backward(terms[keys.LOSS], "main")
        ctx.step("main")
        return detached(terms)

    @torch.no_grad()
    def eval_step(self, batch: Batch) -> dict[str, Tensor]:
        """Forward, update the confusion matrix over valid pixels, return the loss terms."""
        logits = self.nets["model"](batch[sample.IMAGE])
        with full_precision(logits.device):
            terms = self.loss_terms(logits, batch)
            self.seg_metrics.update(
                torch.sigmoid(logits.float()), batch[sample.MASK], batch_valid(batch)
            )
            self.loss_means.update({keys.LOSS: terms[keys.LOSS]})
        return detached(terms)

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, Tensor]:
        """``{"prob": (B, 1, H, W) in [0, 1]}`` from the image alone."""
        with self._eval_mode():
            logits = self.nets["model"](batch[sample.IMAGE])
        return {"prob": torch.sigmoid(logits.float())}

    def panels(self, batch: Batch, outputs: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """``segmentation``: one row per sample (see `floodlab.tasks.panels.segmentation_grid`)."""
        n = min(self.spec.logging.num_images, batch[sample.IMAGE].shape[0])
        valid = batch_valid(batch)
        return {
            "segmentation": draw.segmentation_grid(
                to_numpy(batch[sample.IMAGE][:n]),
                self.input_bands(batch),
                to_numpy(batch[sample.MASK][:n]),
                None if valid is None else valid[:n].cpu().numpy(),
                to_numpy(outputs["prob"][:n, 0]),
            )
        }

    def input_bands(self, batch: Batch) -> list[str]:
        """Band names of the image channels (the batch's band for band-agnostic samples)."""
        band = batch.get(sample.BAND)
        if isinstance(band, list | tuple) and band:
            return [str(band[0])]
        if isinstance(band, str):
            return [band]
        return list(self.spec.data.image_bands)
