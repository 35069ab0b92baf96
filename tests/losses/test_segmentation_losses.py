"""Masked segmentation losses against hand computations, and validity-mask invariance."""

from __future__ import annotations

import math

import pytest
import torch

from floodlab.losses import (
    bce_loss,
    boundary_loss,
    dice_loss,
    focal_loss,
    focal_tversky_loss,
    image_dice_loss,
    image_lovasz_loss,
    tversky_index,
)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# 1 image of 1x4 pixels: logits, labels, and the last pixel invalid.
LOGITS = torch.tensor([[[[2.0, -1.0, 0.5, 3.0]]]])  # (B, 1, H, W)
TARGET = torch.tensor([[[1.0, 0.0, 0.0, 1.0]]])  # (B, H, W)
VALID = torch.tensor([[[True, True, True, False]]])
P = [_sig(v) for v in (2.0, -1.0, 0.5)]  # probabilities of the valid pixels
Y = [1.0, 0.0, 0.0]


def test_bce_is_mean_over_valid_pixels() -> None:
    expected = (
        -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for p, y in zip(P, Y, strict=True)) / 3
    )
    assert bce_loss(LOGITS, TARGET, VALID).item() == pytest.approx(expected, rel=1e-5)


def test_dice_hand_computation() -> None:
    tp = sum(p * y for p, y in zip(P, Y, strict=True))
    fp = sum(p * (1 - y) for p, y in zip(P, Y, strict=True))
    fn = sum((1 - p) * y for p, y in zip(P, Y, strict=True))
    expected = 1 - (2 * tp + 1) / (2 * tp + fp + fn + 1)
    assert dice_loss(LOGITS, TARGET, VALID).item() == pytest.approx(expected, rel=1e-5)


def test_image_dice_weighs_every_image_the_same() -> None:
    # Image 0: the hand-computed 1x4 image above. Image 1: dry, one confident false positive.
    # Image 2: no valid pixel at all, left out of the mean.
    logits = torch.cat([LOGITS, torch.tensor([[[[3.0, -4.0, -4.0, -4.0]]]]), LOGITS])
    target = torch.cat([TARGET, torch.zeros(1, 1, 4), TARGET])
    valid = torch.cat(
        [VALID, torch.ones(1, 1, 4, dtype=torch.bool), torch.zeros(1, 1, 4, dtype=torch.bool)]
    )
    tp = sum(p * y for p, y in zip(P, Y, strict=True))
    fp = sum(p * (1 - y) for p, y in zip(P, Y, strict=True))
    fn = sum((1 - p) * y for p, y in zip(P, Y, strict=True))
    first = 1 - (2 * tp + 1) / (2 * tp + fp + fn + 1)
    second = 1 - 1 / (_sig(3.0) + 3 * _sig(-4.0) + 1)
    got = image_dice_loss(logits, target, valid).item()
    assert got == pytest.approx((first + second) / 2, rel=1e-5)
    assert image_dice_loss(logits[2:], target[2:], valid[2:]).item() == 0.0
    # A well-mapped flood plain beside a dry image with 4 false positives: pooled over the
    # batch the false positives hardly count; per image they are half the loss.
    target = torch.zeros(2, 16, 16)
    target[0, :, :8] = 1.0
    logits = (target * 2 - 1)[:, None] * 8
    logits[1, 0, 0, :4] = 8.0
    assert dice_loss(logits, target).item() < 0.02
    assert image_dice_loss(logits, target).item() == pytest.approx(0.4, abs=0.01)


def _iou(pred: torch.Tensor, target: torch.Tensor) -> float:
    inter = (pred & target).sum().item()
    return inter / (pred | target).sum().item()


def test_image_lovasz_is_twice_one_minus_each_images_iou_at_unit_margins() -> None:
    # Logits of +-1 put every hinge error at 0 (right) or 2 (wrong), where the Lovasz
    # extension of 1 - IoU is 2 (1 - IoU) of the thresholded mask (Berman et al., 2018).
    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 9, 9, generator=g) > 0.6
    pred = torch.rand(3, 9, 9, generator=g) > 0.5
    valid = torch.rand(3, 9, 9, generator=g) > 0.2
    valid[2] = False  # no valid pixel: left out of the mean
    logits = pred.float()[:, None] * 2 - 1
    expected = [2 * (1 - _iou(pred[b][valid[b]], target[b][valid[b]])) for b in range(2)]
    got = image_lovasz_loss(logits, target.float(), valid).item()
    assert got == pytest.approx(sum(expected) / 2, rel=1e-5)
    assert image_lovasz_loss(logits[2:], target[2:].float(), valid[2:]).item() == 0.0
    # A dry image costs its largest false-positive margin: 1 + 3 for a logit of 3.
    dry = torch.full((1, 1, 4, 4), -5.0)
    dry[0, 0, 0, 0] = 3.0
    assert image_lovasz_loss(dry, torch.zeros(1, 4, 4)).item() == pytest.approx(4.0)


def test_focal_tversky_weights_fp_with_alpha_and_fn_with_beta() -> None:
    tp = sum(p * y for p, y in zip(P, Y, strict=True))
    fp = sum(p * (1 - y) for p, y in zip(P, Y, strict=True))
    fn = sum((1 - p) * y for p, y in zip(P, Y, strict=True))
    ti = (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1)
    assert tversky_index(LOGITS, TARGET, VALID, 0.3, 0.7).item() == pytest.approx(ti, rel=1e-5)
    got = focal_tversky_loss(LOGITS, TARGET, VALID, alpha=0.3, beta=0.7, gamma=0.75)
    assert got.item() == pytest.approx((1 - ti) ** 0.75, rel=1e-5)
    # Only false positives: raising alpha raises the loss, raising beta does not.
    fp_only = torch.tensor([[[[4.0, 4.0]]]]), torch.tensor([[[0.0, 1.0]]])
    low = focal_tversky_loss(*fp_only, alpha=0.1, beta=0.5)
    assert focal_tversky_loss(*fp_only, alpha=0.9, beta=0.5) > low


def test_focal_hand_computation() -> None:
    alpha, gamma = 0.25, 2.0
    terms = []
    for p, y in zip(P, Y, strict=True):
        pt = p if y == 1 else 1 - p
        at = alpha if y == 1 else 1 - alpha
        terms.append(-at * (1 - pt) ** gamma * math.log(pt))
    got = focal_loss(LOGITS, TARGET, VALID, alpha=alpha, gamma=gamma)
    assert got.item() == pytest.approx(sum(terms) / 3, rel=1e-5)


LOSSES = [
    bce_loss,
    dice_loss,
    image_dice_loss,
    image_lovasz_loss,
    focal_tversky_loss,
    focal_loss,
    boundary_loss,
]


@pytest.mark.parametrize("loss_fn", LOSSES, ids=lambda f: f.__name__)
def test_invalid_pixels_change_neither_loss_nor_gradient(loss_fn) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 12, 12, generator=g)
    target = (torch.rand(2, 12, 12, generator=g) > 0.5).float()
    valid = torch.rand(2, 12, 12, generator=g) > 0.3

    def run(lg: torch.Tensor, tg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lg = lg.clone().requires_grad_(True)
        loss = loss_fn(lg, tg, valid)
        loss.backward()
        return loss.detach(), lg.grad

    loss_a, grad_a = run(logits, target)
    # Scramble only the invalid pixels, including NaNs in the logits.
    other_logits = torch.where(valid[:, None], logits, torch.randn_like(logits) * 10)
    other_logits[0, 0][~valid[0]] = float("nan")
    other_target = torch.where(valid, target, 1 - target)
    loss_b, grad_b = run(other_logits, other_target)
    assert torch.allclose(loss_a, loss_b)
    assert torch.allclose(grad_a, grad_b)
    assert torch.all(grad_a[~valid[:, None]] == 0)
    assert grad_a.abs().sum() > 0


def test_perfect_prediction_scores_lower_than_wrong_one() -> None:
    target = torch.zeros(1, 16, 16)
    target[:, :, :8] = 1.0
    good = (target * 2 - 1)[:, None] * 8
    for loss_fn in LOSSES:
        assert loss_fn(good, target) < loss_fn(-good, target), loss_fn.__name__


def test_boundary_loss_focuses_on_the_shoreline() -> None:
    target = torch.zeros(1, 32, 32)
    target[:, :, :16] = 1.0  # a vertical shoreline between columns 15 and 16
    good = (target * 2 - 1)[:, None] * 6
    far_error = good.clone()
    far_error[..., 2:6, 0:4] *= -1  # wrong far from the shoreline
    near_error = good.clone()
    near_error[..., 2:6, 14:18] *= -1  # wrong on the shoreline, same number of pixels
    assert boundary_loss(near_error, target) > boundary_loss(far_error, target)
    # A mask edge against missing data is not a shoreline.
    flat = torch.zeros(1, 16, 16)
    valid = torch.ones(1, 16, 16, dtype=torch.bool)
    valid[:, :, 8:] = False
    assert boundary_loss(torch.full((1, 1, 16, 16), -6.0), flat, valid).item() < 0.01
