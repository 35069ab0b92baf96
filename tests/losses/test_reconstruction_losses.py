"""Reconstruction and GAN losses against hand computations, and validity-mask invariance."""

from __future__ import annotations

import math

import pytest
import torch
from kornia.metrics import ssim

from floodlab.losses import (
    charbonnier_loss,
    cycle_loss,
    edge_loss,
    fft_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    ssim_loss,
)


def test_charbonnier_hand_computation() -> None:
    pred = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    target = torch.tensor([[[[0.0, 0.0, 0.0]]]])
    valid = torch.tensor([[[True, True, False]]])
    eps = 1e-3
    expected = (math.sqrt(eps**2) + math.sqrt(0.25 + eps**2)) / 2
    got = charbonnier_loss(pred, target, valid, eps=eps)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_ssim_loss_is_one_minus_kornia_ssim_and_zero_for_identical() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    expected = 1 - ssim(a, b, 11).mean()
    assert ssim_loss(a, b).item() == pytest.approx(expected.item(), rel=1e-5)
    assert ssim_loss(a, a).item() == pytest.approx(0.0, abs=1e-5)


def test_fft_loss_is_l1_of_log_magnitude_spectra() -> None:
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(1, 2, 8, 8, generator=g), torch.rand(1, 2, 8, 8, generator=g)
    fa = torch.log1p(torch.abs(torch.fft.rfft2(a, norm="ortho")))
    fb = torch.log1p(torch.abs(torch.fft.rfft2(b, norm="ortho")))
    assert fft_loss(a, b).item() == pytest.approx((fa - fb).abs().mean().item(), rel=1e-5)
    # Magnitude only: a circular shift (phase change) costs nothing.
    assert fft_loss(torch.roll(a, 3, dims=-1), a).item() == pytest.approx(0.0, abs=1e-5)


def test_edge_loss_sees_edges_not_offsets() -> None:
    a = torch.zeros(1, 1, 12, 12)
    a[..., 6:] = 1.0
    assert edge_loss(a + 0.3, a).item() == pytest.approx(0.0, abs=1e-6)
    assert edge_loss(torch.zeros_like(a), a).item() > 0.0


def test_gan_losses_hand_computation() -> None:
    real, fake = torch.tensor([0.5, 1.0]), torch.tensor([0.2, -0.2])
    d = 0.5 * (((0.5 - 1) ** 2 + 0) / 2 + (0.04 + 0.04) / 2)
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(d)
    assert lsgan_generator_loss(fake).item() == pytest.approx(((0.8**2) + (1.2**2)) / 2)
    x, y = torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0, 0.0]]]])
    assert cycle_loss(x, y).item() == pytest.approx(1.5)
    assert identity_loss(x, y, torch.tensor([[[True, False]]])).item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "loss_fn",
    [charbonnier_loss, ssim_loss, fft_loss, edge_loss, cycle_loss],
    ids=lambda f: f.__name__,
)
def test_invalid_pixels_change_neither_loss_nor_gradient(loss_fn) -> None:
    g = torch.Generator().manual_seed(3)
    pred = torch.rand(2, 3, 16, 16, generator=g)
    target = torch.rand(2, 3, 16, 16, generator=g)
    valid = torch.rand(2, 16, 16, generator=g) > 0.3

    def run(p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = p.clone().requires_grad_(True)
        loss = loss_fn(p, t, valid)
        loss.backward()
        return loss.detach(), p.grad

    loss_a, grad_a = run(pred, target)
    inv = ~valid[:, None].expand_as(pred)
    pred_b, target_b = pred.clone(), target.clone()
    pred_b[inv] = float("nan")
    target_b[inv] = 5.0
    loss_b, grad_b = run(pred_b, target_b)
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert torch.allclose(grad_a, grad_b, atol=1e-7)
    assert torch.all(grad_a[inv] == 0)
