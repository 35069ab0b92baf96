"""The task registry and the panel drawing helpers."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pytest
import torch

from floodlab.specs import MODEL_KINDS, FloraSpec, SarKDSpec
from floodlab.specs.model import family_spec
from floodlab.tasks import FAMILIES, Task, build_model, build_task, family, register_family
from floodlab.tasks import panels as draw


def test_every_model_kind_has_a_task() -> None:
    assert set(FAMILIES) == set(MODEL_KINDS)


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_every_family_has_spec_model_and_task(kind: str, specs) -> None:
    fam = family(kind)
    assert fam.kind == kind
    assert fam.spec is family_spec(kind)
    assert issubclass(fam.task, Task) and callable(fam.model)
    # The test fixtures cover every registered family, and build through the registry.
    spec = specs[kind]()
    assert isinstance(spec.model, fam.spec)
    assert isinstance(build_model(spec.model), torch.nn.Module)


def test_unknown_kind_error_lists_every_available_family() -> None:
    expected = re.escape(f"Unknown model 'nope'; available: {sorted(MODEL_KINDS)}")
    with pytest.raises(KeyError, match=expected):
        build_model(SimpleNamespace(kind="nope"))
    with pytest.raises(KeyError, match=expected):
        family("nope")


def test_registering_a_family_twice_or_outside_the_union_is_refused() -> None:
    with pytest.raises(ValueError, match="'flora' is already registered by FloraTask"):
        register_family(FloraSpec, model=lambda spec: torch.nn.Identity())(Task)

    class OtherSpec(SarKDSpec):
        kind: Literal["other"] = "other"  # type: ignore[assignment]

    with pytest.raises(ValueError, match=r"not in floodlab\.specs\.model\.ModelSpec"):
        register_family(OtherSpec, model=lambda spec: torch.nn.Identity())(Task)
    assert "other" not in FAMILIES


def test_unknown_kind_lists_the_available_ones() -> None:
    spec = SimpleNamespace(model=SimpleNamespace(kind="nope"))
    with pytest.raises(KeyError, match=r"Unknown model 'nope'; available: \['cloud_unet'"):
        build_task(spec)  # type: ignore[arg-type]


def test_teacher_only_for_sarkd(specs) -> None:
    with pytest.raises(ValueError, match="sarkd"):
        build_task(specs["resunet"](), teacher=torch.nn.Identity())


def test_ground_truth_marks_invalid_pixels_magenta() -> None:
    mask = np.array([[1.0, 0.0], [0.0, 1.0]])
    valid = np.array([[True, True], [False, True]])
    img = draw.label_panel(mask, valid)
    assert tuple(img[1, 0]) == draw.MAGENTA
    assert tuple(img[0, 0]) == draw.POSITIVE and tuple(img[0, 1]) == draw.BACKGROUND


def test_error_panel_colours_false_alarms_and_misses() -> None:
    pred = np.array([[True, False]])
    truth = np.array([[0.0, 1.0]])
    img = draw.error_panel(pred, truth)
    assert tuple(img[0, 0]) == draw.FALSE_POSITIVE and tuple(img[0, 1]) == draw.FALSE_NEGATIVE


def test_sar_composite_and_grid() -> None:
    g = np.random.default_rng(0)
    sar = g.normal(size=(2, 8, 8)).astype(np.float32)
    rgb = draw.input_composite(sar, ["VV", "VH"])
    assert rgb.shape == (8, 8, 3) and rgb.min() >= 0.0 and rgb.max() <= 1.0
    panel = draw.grid([[rgb, draw.validity_panel(np.ones((4, 4), bool))]], pad=2)
    assert panel.dtype == np.uint8 and panel.shape == (8 + 4, 2 * 8 + 6, 3)


def test_histogram_panel_is_an_rgb_image() -> None:
    g = np.random.default_rng(0)
    img = draw.histogram_panel(g.random((3, 100)), g.random((3, 100)), ["B4", "B3", "B2"])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.std() > 0


@pytest.mark.parametrize(
    ("kind", "channels", "batch_kind"), [("resunet", 3, "sar"), ("cyclegan", 2, "minus1_1")]
)
def test_bf16_autocast_train_and_eval(
    kind, channels, batch_kind, specs, batch_of, make_ctx
) -> None:
    """bf16 forwards with fp32 losses and metrics, as under trainer.precision: bf16."""
    task = build_task(specs[kind]())
    ctx = make_ctx(task.configure_optimizers())
    ctx.autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    batch = batch_of(n=2, channels=channels, kind=batch_kind)
    out = task.train_step(batch, ctx)
    assert all(torch.isfinite(v) for v in out.values())
    task.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        task.eval_step(batch)
    assert all(np.isfinite(v) for k, v in task.compute_metrics().items() if k != "precision")
