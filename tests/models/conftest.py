"""Fixtures for the model tests: one thread, fixed seed, and small specs for every model kind.

Tests take a ``model_case`` argument to run over every configuration in `CASES`
(parametrised by `pytest_generate_tests`) and the ``kit`` fixture for inputs and losses.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from floodlab.bands import CYCLEGAN_BAND_SETS
from floodlab.specs.model import (
    CloudUNetSpec,
    CycleGANSpec,
    FloraSpec,
    ResUNetSpec,
    SarKDSpec,
)

# Tiny FLoRA: 3 scales of 8/16/32 channels, 2 heads, 4x4 windows.
TINY_FLORA: dict[str, Any] = {
    "widths": [8, 16, 32],
    "fusion": {"window": 4, "heads": 2, "scales": 3},
}


def flora(**fusion: Any) -> FloraSpec:
    """A tiny FLoRA spec with the given fusion overrides."""
    return FloraSpec(**{**TINY_FLORA, "fusion": {**TINY_FLORA["fusion"], **fusion}})


# Every configuration the tests run, by registry kind; a new kind without cases fails
# `test_every_registered_kind_has_cases`.
CASES: dict[str, list[tuple[str, Any]]] = {
    "flora": [
        ("default", flora()),
        ("no_attention", flora(cross_attention=False)),
        ("no_film", flora(film=False)),
        ("no_fusion_parts", flora(cross_attention=False, film=False)),
        ("unshifted", flora(shifted=False)),
        ("scales1", flora(scales=1)),
        ("scales2_window2", flora(scales=2, window=2)),
    ],
    # ResUNet's default widths are large; 64x64 inputs keep it fast.
    "resunet": [
        ("default", ResUNetSpec()),
        (
            "small_no_sa",
            ResUNetSpec(widths=[8, 16, 32], se_reduction=4, spatial_attention=False, dropout=0.1),
        ),
    ],
    "sarkd": [
        (arch, SarKDSpec(arch=arch, mixer_patch=8, mixer_dim=16, mixer_depth=2))
        for arch in ("unet", "pspnet", "mlp_256", "unet_light", "psp_mixer")
    ],
    "cyclegan": [
        (bands, CycleGANSpec(bands=bands, ngf=8, ndf=8, n_blocks=2))
        for bands in ("rgb", "nir_swir_re", "rgb_nir")
    ],
    "cloud_unet": [
        ("default", CloudUNetSpec()),
        (
            "two_classes_small_decoder",
            CloudUNetSpec(num_classes=2, decoder_widths=[32, 16, 16, 8, 8]),
        ),
    ],
}

ALL_CASES: list[tuple[str, str, Any]] = [
    (kind, name, spec) for kind, cases in CASES.items() for name, spec in cases
]


def case_id(case: tuple[str, str, Any]) -> str:
    """pytest id ``kind-name``."""
    return f"{case[0]}-{case[1]}"


def inputs_for(spec: Any, batch: int = 2, size: tuple[int, int] = (64, 64)) -> dict[str, Tensor]:
    """Random inputs the model of ``spec`` expects: ``x`` and, for FLoRA, ``optical``."""
    h, w = size
    if spec.kind == "flora":
        return {
            "x": torch.randn(batch, spec.sar_channels, h, w),
            "optical": torch.rand(batch, spec.optical_channels, h, w),
        }
    channels = spec.sar_channels if spec.kind == "cyclegan" else spec.in_channels
    return {"x": torch.randn(batch, channels, h, w)}


def run(model: nn.Module, spec: Any, inputs: dict[str, Tensor]) -> Tensor:
    """The model's main output: logits, or the translation for CycleGAN/FLoRA's "rgb"."""
    if spec.kind == "flora":
        return model(inputs["x"], inputs["optical"])["seg"]
    return model(inputs["x"])


def expected_channels(spec: Any) -> int:
    """Channels of `run`'s output."""
    if spec.kind == "cyclegan":
        return len(CYCLEGAN_BAND_SETS[spec.bands])
    return getattr(spec, "num_classes", 1)


def training_loss(model: nn.Module, spec: Any, inputs: dict[str, Tensor]) -> Tensor:
    """A loss touching every output (and, for CycleGAN, every network) with fixed targets."""
    gen = torch.Generator().manual_seed(1)
    if spec.kind == "flora":
        out = model(inputs["x"], inputs["optical"])
        seg_t = torch.randn(out["seg"].shape, generator=gen)
        rgb_t = torch.rand(out["rgb"].shape, generator=gen)
        return (out["seg"] * seg_t).mean() + ((out["rgb"] - rgb_t) ** 2).mean()
    if spec.kind == "cyclegan":
        fake_b = model.g_ab(inputs["x"])
        rec_a = model.g_ba(fake_b)
        return (
            (rec_a - inputs["x"]).abs().mean()
            + model.d_b(fake_b).pow(2).mean()
            + model.d_a(rec_a).pow(2).mean()
        )
    out = model(inputs["x"])
    return (out * torch.randn(out.shape, generator=gen)).mean()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``model_case`` over every (kind, name, spec) in `CASES`, and
    ``kind_case`` over the first case of each kind."""
    if "model_case" in metafunc.fixturenames:
        metafunc.parametrize("model_case", ALL_CASES, ids=case_id)
    if "kind_case" in metafunc.fixturenames:
        firsts = [(kind, *cases[0]) for kind, cases in CASES.items()]
        metafunc.parametrize("kind_case", firsts, ids=case_id)


@pytest.fixture
def kit() -> SimpleNamespace:
    """The case table and the input/loss functions above, for test modules."""
    return SimpleNamespace(
        cases=CASES,
        flora=flora,
        inputs_for=inputs_for,
        run=run,
        expected_channels=expected_channels,
        training_loss=training_loss,
    )


@pytest.fixture(autouse=True)
def _seeded_single_thread() -> Iterator[None]:
    """Seed torch and use one thread so model tests are deterministic and light."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
