"""Fixtures of the training tests: a tiny real segmentation Task and an in-memory dataset."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from floodlab.data import sample as S
from floodlab.specs import ExperimentSpec, load_spec
from floodlab.tasks.base import Batch, StepContext, Task

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def tiny_spec(*overrides: str) -> ExperimentSpec:
    """The quickstart spec, shrunk (the tiny task ignores the model section)."""
    base = [
        "trainer.epochs=4",
        "trainer.batch_size=4",
        "trainer.grad_clip=1.0",
        "logging.image_every=0",
        "logging.log_every_n_steps=1",
        "schedule.kind=constant",
        "optim.lr=0.01",
    ]
    return load_spec(ROOT / "experiments" / "quickstart.yaml", [*base, *overrides])


class ChipDataset(Dataset):
    """Random two-band 'SAR' chips whose water is where band 0 is low (learnable)."""

    def __init__(self, n: int = 24, size: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 2, size, size, generator=g)
        self.masks = (self.images[:, 0] < -0.3).float()
        self.valid = torch.rand(n, size, size, generator=g) > 0.1
        self.masks = self.masks * self.valid

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            S.IMAGE: self.images[i],
            S.MASK: self.masks[i],
            S.VALID: self.valid[i],
            S.ID: f"chip{i:03d}",
        }


class TinyTask(Task):
    """Conv net + masked BCE/Dice; `nan_component`/`nan_at_step` inject a NaN for tests."""

    def __init__(
        self, spec: ExperimentSpec, nan_component: str | None = None, nan_at_step: int = -1
    ):
        super().__init__(spec)
        self.nets["model"] = nn.Sequential(
            nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 1, 1)
        )
        self.nan_component, self.nan_at_step = nan_component, nan_at_step
        self.steps = 0
        self.reset_metrics()

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.spec.optim
        if o.name == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                self.nets.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
            )
        else:
            opt = torch.optim.AdamW(self.nets.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        return {"main": opt}

    def _losses(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.nets["model"](batch[S.IMAGE])[:, 0]
        valid = batch[S.VALID].float()
        bce = (
            F.binary_cross_entropy_with_logits(logits, batch[S.MASK], reduction="none") * valid
        ).sum() / valid.sum().clamp(min=1)
        p = torch.sigmoid(logits) * valid
        dice = 1 - (2 * (p * batch[S.MASK]).sum() + 1) / (p.sum() + batch[S.MASK].sum() + 1)
        return {"bce": bce, "dice": 0.5 * dice}

    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, Tensor]:
        with ctx.autocast():
            parts = self._losses(batch)
        self.steps += 1
        if self.nan_component and self.steps == self.nan_at_step:
            parts[self.nan_component] = parts[self.nan_component] * float("nan")
        loss = sum(parts.values())
        ctx.backward(loss)
        ctx.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    def eval_step(self, batch: Batch) -> dict[str, Tensor]:
        parts = self._losses(batch)
        pred = self.nets["model"](batch[S.IMAGE])[:, 0] > 0
        valid, mask = batch[S.VALID], batch[S.MASK] > 0.5
        self._conf += (
            torch.stack(
                [
                    (pred & mask & valid).sum(),
                    (pred & ~mask & valid).sum(),
                    (~pred & mask & valid).sum(),
                    valid.sum(),
                ]
            )
            .double()
            .cpu()
        )
        return {"loss": sum(parts.values()).detach(), **{k: v.detach() for k, v in parts.items()}}

    def compute_metrics(self) -> dict[str, float]:
        conf = self._conf.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(conf)
        tp, fp, fn, _ = conf.tolist()
        return {"iou": tp / max(tp + fp + fn, 1.0)}

    def reset_metrics(self) -> None:
        self._conf = torch.zeros(4, dtype=torch.float64)

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, Tensor]:
        return {"prob": torch.sigmoid(self.nets["model"](batch[S.IMAGE]))}

    def panels(self, batch: Batch, outputs: dict[str, Tensor]) -> dict[str, np.ndarray]:
        prob = outputs["prob"][:, 0].cpu().numpy()  # (B, H, W)
        strip = np.concatenate(list(prob), axis=1)
        return {"prob": (np.repeat(strip[..., None], 3, axis=-1) * 255).astype(np.uint8)}


@pytest.fixture
def tiny() -> SimpleNamespace:
    """The tiny task, its dataset and the shrunk spec builder."""
    return SimpleNamespace(TinyTask=TinyTask, ChipDataset=ChipDataset, spec=tiny_spec)
