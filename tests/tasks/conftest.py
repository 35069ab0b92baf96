"""Tiny specs, synthetic flood-like batches and a minimal StepContext for the task tests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
import torch

from floodlab.data import sample
from floodlab.specs import ExperimentSpec

SIZE = 32  # patch side in pixels: small enough for CPU, deep enough for 2-4 scales


class SimpleStepContext:
    """The loop's StepContext reduced to fp32: backward = loss.backward, step = step + zero."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers
        self.epoch = 0
        self.global_step = 0
        self.stepped: list[str] = []

    def autocast(self) -> AbstractContextManager[Any]:
        return nullcontext()

    def backward(self, loss: torch.Tensor, opt: str = "main") -> None:
        assert opt in self.optimizers, opt
        loss.backward()

    def step(self, opt: str = "main") -> None:
        self.optimizers[opt].step()
        self.optimizers[opt].zero_grad(set_to_none=True)
        self.stepped.append(opt)
        self.global_step += 1


def _base(name: str, data: dict[str, Any], model: dict[str, Any], **extra: Any) -> ExperimentSpec:
    raw: dict[str, Any] = {
        "name": name,
        "seed": 0,
        "data": {"patch_size": SIZE, **data},
        "model": model,
        "optim": {"name": "adam", "lr": 3e-3, "weight_decay": 0.0},
        "logging": {"num_images": 2},
        **extra,
    }
    return ExperimentSpec.model_validate(raw)


FLOOD_DATA = {"dataset": "sen1floods11", "image_bands": ["VV", "VH"]}


def flora_spec(model: dict[str, Any] | None = None, **loss: Any) -> ExperimentSpec:
    """FLoRA with 2 scales of widths 8/16, one fused scale, a 4-px window."""
    return _base(
        "flora_tiny",
        {
            **FLOOD_DATA,
            "optical_bands": ["B4", "B3", "B2", "NDVI"],
            "target_bands": ["B4", "B3", "B2"],
        },
        {
            "kind": "flora",
            "widths": [8, 16],
            "fusion": {"window": 4, "heads": 2, "scales": 1},
            **(model or {}),
        },
        loss=loss or {},
    )


def resunet_spec() -> ExperimentSpec:
    return _base(
        "resunet_tiny",
        {"dataset": "sen1floods11", "image_bands": ["VV", "RATIO", "MAGNITUDE"]},
        {"kind": "resunet", "widths": [8, 16], "se_reduction": 4},
    )


def sarkd_spec(arch: str = "unet_light", distill: dict[str, Any] | None = None) -> ExperimentSpec:
    extra = {"distill": distill} if distill is not None else {}
    return _base(
        "sarkd_tiny",
        {
            "dataset": "sarkd",
            "image_bands": ["VV"],
            "band_agnostic": True,
            "normalize": "sarkd_clip",
        },
        {"kind": "sarkd", "arch": arch},
        **extra,
    )


def cyclegan_spec(bands: str = "rgb_nir") -> ExperimentSpec:
    from floodlab.bands import CYCLEGAN_BAND_SETS

    return _base(
        "cyclegan_tiny",
        {
            **FLOOD_DATA,
            "dataset": "sen12ms",
            "target_bands": list(CYCLEGAN_BAND_SETS[bands]),
            "label": "none",
            "normalize": "minus1_1",
        },
        {"kind": "cyclegan", "bands": bands, "ngf": 8, "ndf": 8, "n_blocks": 1},
        optim={"name": "adam", "lr": 2e-3, "betas": [0.5, 0.999], "weight_decay": 0.0},
    )


def cloud_spec() -> ExperimentSpec:
    return _base(
        "cloud_tiny",
        {
            "dataset": "cloudsen12",
            "image_bands": ["B4", "B3", "B2"],
            "label": "cloud",
            "normalize": "clip4000",
        },
        {"kind": "cloud_unet", "decoder_widths": [32, 16, 16, 8, 8]},
    )


def flood_batch(
    n: int = 4, size: int = SIZE, channels: int = 2, seed: int = 0, kind: str = "sar"
) -> dict[str, Any]:
    """Synthetic patches with a learnable pattern: water is a random rectangle that is dark
    in SAR (about -20 dB vs -8 dB on land, with speckle), blue with negative NDVI in the
    optical prior; about 10% of the labels are invalid (two blocks per patch).

    `kind`: "sar" (z-scored dB channels), "optical" (cloud: bright = positive) or
    "minus1_1" (CycleGAN ranges).
    """
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n, size, size)
    valid = torch.ones(n, size, size, dtype=torch.bool)
    for i in range(n):
        y0, x0 = torch.randint(0, size // 2, (2,), generator=g).tolist()
        h, w = torch.randint(size // 4, size // 2 + 1, (2,), generator=g).tolist()
        mask[i, y0 : y0 + h, x0 : x0 + w] = 1.0
        for _ in range(2):
            vy, vx = torch.randint(0, size - 6, (2,), generator=g).tolist()
            valid[i, vy : vy + 6, vx : vx + 6] = False
    water = mask[:, None]  # (B, 1, H, W)
    speckle = torch.randn(n, channels, size, size, generator=g)
    db = torch.where(water > 0, torch.tensor(-20.0), torch.tensor(-8.0)) + 1.5 * speckle  # dB
    image = (db + 14.0) / 6.0  # roughly z-scored
    red = torch.where(water > 0, 0.05, 0.15) + 0.02 * torch.randn(n, 1, size, size, generator=g)
    green = torch.where(water > 0, 0.08, 0.25) + 0.02 * torch.randn(n, 1, size, size, generator=g)
    blue = torch.where(water > 0, 0.2, 0.1) + 0.02 * torch.randn(n, 1, size, size, generator=g)
    nir = torch.where(water > 0, 0.03, 0.4) + 0.02 * torch.randn(n, 1, size, size, generator=g)
    rgb = torch.cat([red, green, blue], 1).clamp(0, 1)
    ndvi = (nir - red) / (nir + red).clamp_min(1e-3)
    batch: dict[str, Any] = {
        sample.IMAGE: image,
        sample.MASK: torch.where(valid, mask, torch.zeros_like(mask)),
        sample.VALID: valid,
        sample.OPTICAL: torch.cat([rgb, ndvi], 1),
        sample.TARGET: rgb,
        sample.ID: [f"chip{i}" for i in range(n)],
    }
    if kind == "optical":  # cloud: bright white clouds over darker ground
        batch[sample.IMAGE] = torch.cat([rgb] * 1, 1) + 0.6 * water
    elif kind == "minus1_1":
        batch[sample.IMAGE] = (image / 3.0).clamp(-1, 1)
        batch[sample.TARGET] = torch.cat([rgb, nir.clamp(0, 1)], 1) * 2 - 1
        batch[sample.VALID] = torch.ones_like(valid)
    return batch


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """One intra-op thread: these tensors are tiny, and on a busy 2-core machine thread
    barriers cost far more than they parallelise. Seed torch for determinism."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_ctx() -> Callable[[dict[str, torch.optim.Optimizer]], SimpleStepContext]:
    return SimpleStepContext


@pytest.fixture
def specs() -> dict[str, Callable[..., ExperimentSpec]]:
    return {
        "flora": flora_spec,
        "resunet": resunet_spec,
        "sarkd": sarkd_spec,
        "cyclegan": cyclegan_spec,
        "cloud_unet": cloud_spec,
    }


@pytest.fixture
def batch_of() -> Callable[..., dict[str, Any]]:
    return flood_batch
