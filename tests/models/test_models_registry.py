"""Every registered model: builds from its spec, runs forward and backward, trains every weight."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from floodlab.specs.model import MODEL_KINDS, FloraSpec
from floodlab.tasks import FAMILIES, Task, build_model, register_family


def test_every_spec_kind_is_registered() -> None:
    assert set(FAMILIES) == set(MODEL_KINDS)


def test_every_registered_kind_has_cases(kit: SimpleNamespace) -> None:
    # A newly registered family must add small cases so it is tested automatically.
    assert set(kit.cases) == set(FAMILIES)


def test_unknown_kind_raises_keyerror_listing_available() -> None:
    class Unknown:
        kind = "transformer9000"

    with pytest.raises(KeyError, match=r"Unknown model 'transformer9000'; available: \[.*flora"):
        build_model(Unknown())


def test_register_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_family(FloraSpec, model=lambda spec: torch.nn.Identity())(Task)


def test_forward_backward_shapes_and_gradients(
    model_case: tuple[str, str, Any], kit: SimpleNamespace
) -> None:
    kind, _, spec = model_case
    model = build_model(spec)
    inputs = kit.inputs_for(spec)
    out = kit.run(model, spec, inputs)
    assert out.shape == (2, kit.expected_channels(spec), 64, 64)
    assert torch.isfinite(out).all()

    model.zero_grad()
    kit.training_loss(model, spec, inputs).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    # FLoRA's SAR-alone stand-ins (prior tokens / prior FiLM condition) are only used when
    # the optical prior is absent; this loss feeds the optical prior, so they stay idle.
    # With both fusion parts off the teacher feeds no output (only the distillation loss,
    # computed by the task, trains it then).
    fusion_off = kind == "flora" and not (spec.fusion.cross_attention or spec.fusion.film)
    legit = [
        n
        for n in no_grad
        if kind == "flora" and (".prior_" in n or (fusion_off and n.startswith("teacher.")))
    ]
    assert sorted(no_grad) == sorted(legit), f"parameters without gradient: {no_grad}"
    bad = [
        n
        for n, p in model.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]
    assert not bad, f"non-finite gradients: {bad}"


def test_any_input_size(model_case: tuple[str, str, Any], kit: SimpleNamespace) -> None:
    # Non-square sizes that are not multiples of 32: every model pads internally and crops
    # its output back, so full scenes and odd tiles need no resizing.
    size = (37, 72)
    _, _, spec = model_case
    model = build_model(spec).eval()
    inputs = kit.inputs_for(spec, batch=1, size=size)
    with torch.no_grad():
        out = kit.run(model, spec, inputs)
    assert out.shape == (1, kit.expected_channels(spec), *size)
    assert torch.isfinite(out).all()
