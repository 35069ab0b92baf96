"""Temperature KD (binary and multi-class, T^2 scaling) and feature distillation."""

from __future__ import annotations

import math

import pytest
import torch

from floodlab.losses import FeatureDistillation, kd_binary_loss, kd_loss, kd_multiclass_loss


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_binary_kd_hand_computation_with_t_squared() -> None:
    s, t, temp = 1.0, 3.0, 4.0
    q, p = _sig(t / temp), _sig(s / temp)
    expected = -(q * math.log(p) + (1 - q) * math.log(1 - p)) * temp**2
    got = kd_binary_loss(torch.tensor([[[[s]]]]), torch.tensor([[[[t]]]]), temp)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_binary_kd_gradient_keeps_its_scale_across_temperatures() -> None:
    # d/ds of T^2 * BCE(sigmoid(s/T), sigmoid(t/T)) = T * (sigmoid(s/T) - sigmoid(t/T)).
    for temp in (1.0, 4.0):
        s = torch.tensor([[[[0.5]]]], requires_grad=True)
        kd_binary_loss(s, torch.tensor([[[[2.0]]]]), temp).backward()
        expected = temp * (_sig(0.5 / temp) - _sig(2.0 / temp))
        assert s.grad.item() == pytest.approx(expected, rel=1e-5)


def test_multiclass_kd_is_t2_times_kl() -> None:
    s = torch.tensor([1.0, 0.0, -1.0])
    t = torch.tensor([0.0, 2.0, 0.5])
    temp = 2.0
    ps, pt = torch.softmax(s / temp, 0), torch.softmax(t / temp, 0)
    expected = (pt * (pt.log() - ps.log())).sum().item() * temp**2
    got = kd_multiclass_loss(s.view(1, 3, 1, 1), t.view(1, 3, 1, 1), temp)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert kd_loss(s.view(1, 3, 1, 1), t.view(1, 3, 1, 1), temp).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_kd_ignores_invalid_pixels_and_detaches_teacher() -> None:
    s = torch.tensor([[[[0.3, 5.0]]]], requires_grad=True)
    t = torch.tensor([[[[1.0, float("nan")]]]], requires_grad=True)
    valid = torch.tensor([[[True, False]]])
    loss = kd_binary_loss(s, t, 4.0, valid)
    loss.backward()
    ref = kd_binary_loss(s[..., :1].detach(), t[..., :1].detach(), 4.0)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    assert s.grad[0, 0, 0, 1] == 0
    assert t.grad is None or torch.all(t.grad == 0)


def test_feature_distillation_projects_differing_widths_and_trains_projection() -> None:
    torch.manual_seed(0)
    fd = FeatureDistillation([8, 4], [4, 4])
    assert isinstance(fd.proj[0], torch.nn.Conv2d) and isinstance(fd.proj[1], torch.nn.Identity)
    student = [torch.randn(2, 8, 4, 4), torch.randn(2, 4, 2, 2, requires_grad=True)]
    teacher = [torch.randn(2, 4, 4, 4, requires_grad=True), torch.randn(2, 4, 2, 2)]
    loss = fd(student, teacher)
    proj0 = fd.proj[0](student[0])
    expected = (
        torch.nn.functional.mse_loss(proj0, teacher[0])
        + torch.nn.functional.mse_loss(student[1], teacher[1])
    ) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert fd.proj[0].weight.grad is not None and fd.proj[0].weight.grad.abs().sum() > 0
    assert teacher[0].grad is None
    assert student[1].grad is not None
