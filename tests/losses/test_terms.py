"""The table of loss-term functions covers every weight field and computes each term."""

from __future__ import annotations

import pytest
import torch

from floodlab.losses import TASK_TERMS, TERMS
from floodlab.specs.loss import TERM_PATHS, RecLossSpec, SegLossSpec


def test_every_weight_field_has_a_function_or_is_composed_by_its_task() -> None:
    # A new weight field without an entry here would be accepted by specs and ignored.
    assert set(TERMS) | set(TASK_TERMS) == set(TERM_PATHS)
    assert not set(TERMS) & set(TASK_TERMS)


@pytest.mark.parametrize("path", sorted(TERMS))
def test_every_term_is_a_finite_differentiable_scalar(path: str) -> None:
    g = torch.Generator().manual_seed(0)
    valid = torch.ones(2, 16, 16, dtype=torch.bool)
    valid[:, :4] = False
    if path.startswith("seg."):
        output = torch.randn(2, 1, 16, 16, generator=g, requires_grad=True)
        target = (torch.rand(2, 16, 16, generator=g) > 0.5).float()
        section: SegLossSpec | RecLossSpec = SegLossSpec()
    else:
        output = torch.rand(2, 3, 16, 16, generator=g, requires_grad=True)
        target = torch.rand(2, 3, 16, 16, generator=g)
        section = RecLossSpec()
    value = TERMS[path](output, target, valid, section)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert output.grad is not None and torch.isfinite(output.grad).all()
