"""Per-epoch learning-rate schedules: shapes users configure, and plateau state across resumes."""

from __future__ import annotations

import itertools

import pytest
import torch

from floodlab.specs import ScheduleSpec
from floodlab.train.schedules import EpochLR, lr_at


def _lrs(spec: ScheduleSpec, epochs: int, base: float = 1.0) -> list[float]:
    return [lr_at(e, base, spec, epochs) for e in range(epochs)]


def test_linear_warmup_then_cosine_to_eta_min():
    lrs = _lrs(ScheduleSpec(kind="cosine", warmup_epochs=2, eta_min=0.0), 12)
    assert lrs[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])  # never lr 0 in the first epoch
    assert all(a > b for a, b in itertools.pairwise(lrs[2:]))  # decays monotonically
    assert lrs[-1] == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(torch.pi * 9 / 10)).item()))


def test_warm_restarts_follow_t0_and_t_mult():
    lrs = _lrs(ScheduleSpec(kind="cosine_warm_restarts", t0=2, t_mult=2, eta_min=0.0), 8)
    # Cycles of 2, then 4 epochs: the rate jumps back to base at epochs 2 and 6.
    assert [i for i in range(1, 8) if lrs[i] > lrs[i - 1]] == [2, 6]
    assert lrs[0] == lrs[2] == lrs[6] == 1.0


def test_step_and_constant():
    assert _lrs(ScheduleSpec(kind="step", step_size=2, gamma=0.5), 5) == [1, 1, 0.5, 0.5, 0.25]
    assert _lrs(ScheduleSpec(kind="constant"), 3) == [1.0, 1.0, 1.0]


def test_plateau_decays_after_patience_and_resumes_its_state():
    spec = ScheduleSpec(kind="plateau", mode="max", factor=0.5, patience=1, eta_min=0.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = EpochLR(opt, spec, epochs=10)
    for value in (0.5, 0.4, 0.4):  # improvement, then two epochs without
        sched.start_epoch(0)
        sched.observe(value)
    assert sched.start_epoch(3) == pytest.approx(0.05)
    fresh = EpochLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), spec, 10)
    fresh.load_state_dict(sched.state_dict())
    assert fresh.start_epoch(4) == pytest.approx(0.05)


def test_groups_keep_their_own_base_rates():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}])
    EpochLR(opt, ScheduleSpec(kind="step", step_size=1, gamma=0.5), 4).start_epoch(1)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5, 0.05])
