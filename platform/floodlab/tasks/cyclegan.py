"""CycleGAN task: unpaired-style SAR <-> EO translation with LSGAN, cycle and identity losses."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from floodlab.bands import CYCLEGAN_BAND_SETS
from floodlab.data import sample
from floodlab.losses import (
    cycle_loss,
    identity_loss,
    lsgan_discriminator_loss,
)
from floodlab.metrics import LossMeans, ReconstructionMetrics, keys
from floodlab.models import build_cyclegan
from floodlab.specs import CycleGANSpec, ExperimentSpec
from floodlab.tasks import panels as draw
from floodlab.tasks.base import Batch, StepContext, Task
from floodlab.tasks.common import (
    build_optimizer,
    detached,
    fooling_loss,
    full_precision,
    target_valid,
    to_numpy,
    total,
)
from floodlab.tasks.registry import build_model, register_family

logger = logging.getLogger(__name__)


class ImagePool:
    """History of generated images fed to a discriminator (Shrivastava et al., 2017).

    As in the CycleGAN reference: until the pool is full every fake is stored and
    returned; afterwards each fake is, with probability 1/2, swapped for a stored one
    (which is returned, the new one taking its place). The pool lives per process (per
    DDP rank) and is not checkpointed.

    Args:
        size: number of images kept; 0 disables the pool.
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """Images (B, C, H, W) to show the discriminator, mixing in older fakes."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif float(torch.rand(())) < 0.5:
                idx = int(torch.randint(len(self.images), ()))
                out.append(self.images[idx].clone())
                self.images[idx] = image
            else:
                out.append(image)
        return torch.cat(out)


def to_unit(x: Tensor) -> Tensor:
    """Map [-1, 1] back to [0, 1] (clamped) for metrics and panels."""
    return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)


@register_family(CycleGANSpec, model=build_cyclegan)
class CycleGANTask(Task):
    """CycleGAN between SAR (domain A, ``image``) and EO (domain B, ``target``), both in [-1, 1].

    Networks ``g_ab`` (SAR -> EO), ``g_ba`` (EO -> SAR), ``d_a`` and ``d_b`` (70x70
    PatchGANs). Optimisers "g" (both generators, `optim.lr`) and "d" (both
    discriminators, `optim.d_lr` or `optim.lr`). Each step updates the generators with

        g_adv    = w_adv * (LSGAN(D_b(G_ab(a)), 1) + LSGAN(D_a(G_ba(b)), 1))
        cycle    = lambda * (|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1)
        identity = w_id * (|G_ab(b) - b|_1 + |G_ba(a) - a|_1)

    then the discriminators with d_adv = LSGAN_D(D_a) + LSGAN_D(D_b) on real images vs a
    history pool of 50 fakes (each LSGAN_D halved, as in the reference). The identity term
    needs G_ab to accept EO images, i.e. as many SAR as EO channels; the spec validator
    refuses `loss.gan.identity` > 0 otherwise. Metrics (on [0, 1]): PSNR, SSIM, SAM,
    band RMSE and NDVI consistency when B8 and B4 are translated (``rgb_nir``).
    """

    def __init__(self, spec: ExperimentSpec):
        super().__init__(spec)
        m = spec.model
        if not isinstance(m, CycleGANSpec):
            raise TypeError(f"CycleGANTask needs model.kind 'cyclegan', got {m.kind!r}")
        gan = build_model(m)
        for name in ("g_ab", "g_ba", "d_a", "d_b"):
            self.nets[name] = getattr(gan, name)
        self.bands = list(CYCLEGAN_BAND_SETS[m.bands])
        # The family's `check` guarantees a loss.gan term with a weight > 0.
        self.weights = spec.loss.gan
        self.pools = {"a": ImagePool(), "b": ImagePool()}
        self.rec_metrics = ReconstructionMetrics(self.bands)
        self.loss_means = LossMeans([keys.LOSS])

    def metric_states(self) -> tuple[Metric, ...]:
        """The reconstruction metrics (PSNR, SSIM, SAM, RMSE per band, NDVI error where
        computable) and the mean loss."""
        return self.rec_metrics, self.loss_means

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """ "g" over both generators, "d" over both discriminators (lr `optim.d_lr`)."""
        gens = [*self.nets["g_ab"].parameters(), *self.nets["g_ba"].parameters()]
        discs = [*self.nets["d_a"].parameters(), *self.nets["d_b"].parameters()]
        optim = self.spec.optim
        return {"g": build_optimizer(gens, optim), "d": build_optimizer(discs, optim, optim.d_lr)}

    # -- losses ---------------------------------------------------------------------------
    def _generator_terms(
        self, real_a: Tensor, real_b: Tensor, autocast: Callable[[], AbstractContextManager[Any]]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(weighted generator terms, generated images) for one batch."""
        w = self.weights
        g_ab, g_ba = self.nets["g_ab"], self.nets["g_ba"]
        with autocast():
            fake_b = g_ab(real_a)
            fake_a = g_ba(real_b)
            rec_a = g_ba(fake_b) if w.cycle > 0 else None
            rec_b = g_ab(fake_a) if w.cycle > 0 else None
            idt_b = g_ab(real_b) if w.identity > 0 else None
            idt_a = g_ba(real_a) if w.identity > 0 else None
        terms: dict[str, Tensor] = {}
        with full_precision(real_a.device):
            if w.adversarial > 0:
                adv = fooling_loss(self.nets["d_b"], fake_b) + fooling_loss(
                    self.nets["d_a"], fake_a
                )
                terms["g_adv"] = w.adversarial * adv
            if rec_a is not None and rec_b is not None:
                terms["cycle"] = w.cycle * (cycle_loss(rec_a, real_a) + cycle_loss(rec_b, real_b))
            if idt_a is not None and idt_b is not None:
                terms["identity"] = w.identity * (
                    identity_loss(idt_b, real_b) + identity_loss(idt_a, real_a)
                )
            terms[keys.LOSS] = total(terms)
        return terms, {"fake_a": fake_a, "fake_b": fake_b}

    def _discriminator_loss(
        self,
        real_a: Tensor,
        real_b: Tensor,
        fake_a: Tensor,
        fake_b: Tensor,
        autocast: Callable[[], AbstractContextManager[Any]],
    ) -> Tensor:
        """LSGAN loss of both discriminators on real images vs (detached) fakes."""
        n = real_a.shape[0]
        with autocast():
            # One forward per discriminator over [real; fake]: instance norm keeps samples
            # independent, and a DDP-wrapped net sees a single forward before its backward.
            logits_a = self.nets["d_a"](torch.cat([real_a, fake_a.detach().to(real_a.dtype)]))
            logits_b = self.nets["d_b"](torch.cat([real_b, fake_b.detach().to(real_b.dtype)]))
        with full_precision(real_a.device):
            return lsgan_discriminator_loss(logits_a[:n], logits_a[n:]) + lsgan_discriminator_loss(
                logits_b[:n], logits_b[n:]
            )

    # -- steps ----------------------------------------------------------------------------
    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, Tensor]:
        """Generators' step ("g"), then discriminators' step ("d") on pooled fakes."""
        real_a = batch[sample.IMAGE]
        real_b = torch.nan_to_num(batch[sample.TARGET])
        terms, fakes = self._generator_terms(real_a, real_b, ctx.autocast)
        ctx.backward(terms[keys.LOSS], "g")
        ctx.step("g")
        pool_a = self.pools["a"].query(fakes["fake_a"])
        pool_b = self.pools["b"].query(fakes["fake_b"])
        d_loss = self._discriminator_loss(real_a, real_b, pool_a, pool_b, ctx.autocast)
        ctx.backward(d_loss, "d")
        ctx.step("d")
        terms["d_adv"] = d_loss
        return detached(terms)

    @torch.no_grad()
    def eval_step(self, batch: Batch) -> dict[str, Tensor]:
        """Generator and discriminator losses without updates; metrics of G_ab(a) vs b."""
        real_a = batch[sample.IMAGE]
        target = batch[sample.TARGET]
        real_b = torch.nan_to_num(target)
        # Forwards run under the caller's autocast (the loop's evaluation precision).
        terms, fakes = self._generator_terms(real_a, real_b, contextlib.nullcontext)
        terms["d_adv"] = self._discriminator_loss(
            real_a, real_b, fakes["fake_a"], fakes["fake_b"], contextlib.nullcontext
        )
        with full_precision(real_a.device):
            self.rec_metrics.update(to_unit(fakes["fake_b"]), to_unit(real_b), target_valid(target))
            self.loss_means.update({keys.LOSS: terms[keys.LOSS]})
        return detached(terms)

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, Tensor]:
        """``{"optical": G_ab(image)}``, (B, C_eo, H, W) in [-1, 1]."""
        was_training = self.nets.training
        self.eval()
        try:
            fake = self.nets["g_ab"](batch[sample.IMAGE])
        finally:
            self.train(was_training)
        return {"optical": fake.float()}

    def panels(self, batch: Batch, outputs: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """``translation``: per sample the SAR false colour (VV, VH, VV/VH), the fake EO and
        the real EO composites (same stretch); ``histograms``: per-band value histograms
        of fake vs real EO over the shown samples."""
        n = min(self.spec.logging.num_images, batch[sample.IMAGE].shape[0])
        sar = to_numpy(batch[sample.IMAGE][:n])
        real = to_numpy(to_unit(torch.nan_to_num(batch[sample.TARGET][:n])))
        fake = to_numpy(to_unit(outputs["optical"][:n]))
        sar_bands = list(self.spec.data.image_bands)
        rows = [
            [
                draw.input_composite(sar[i], sar_bands),
                draw.optical_composite(fake[i], self.bands, ref=real[i]),
                draw.optical_composite(real[i], self.bands),
            ]
            for i in range(n)
        ]
        c = len(self.bands)
        hist = draw.histogram_panel(
            np.moveaxis(fake, 1, 0).reshape(c, -1),
            np.moveaxis(real, 1, 0).reshape(c, -1),
            self.bands,
        )
        return {"translation": draw.grid(rows), "histograms": hist}
