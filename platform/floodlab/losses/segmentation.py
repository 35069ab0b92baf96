"""Masked binary segmentation losses: BCE, Dice, Focal, Focal-Tversky, Lovasz hinge and a
shoreline term.

Every loss takes logits (B, 1, H, W) or (B, H, W), a {0, 1} target of the same spatial
shape and an optional validity mask (B, H, W) bool. Invalid pixels are missing data: they
contribute nothing to the value or to the gradient (they are removed with `torch.where`,
so even NaN logits or targets there are harmless).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import sobel
from kornia.losses import binary_focal_loss_with_logits, lovasz_hinge_loss
from torch import Tensor

from floodlab.losses.masking import as_bhw, erode, fill_invalid, masked_mean, valid_mask


def _prepare(logits: Tensor, target: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """(B, H, W) fp32 logits and target, both zeroed where invalid, and the (B, H, W) mask.

    Zeroing the inputs themselves (not only the per-pixel losses) matters: a NaN logit
    would otherwise turn its zero upstream gradient into NaN (0 * NaN) in the backward.
    """
    logits = as_bhw(logits).float()
    mask = valid_mask(valid, logits)
    target = as_bhw(target).to(logits)
    return fill_invalid(logits, mask), fill_invalid(target, mask), mask


def _soft_counts(logits: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Soft TP, FP, FN summed over the valid pixels of the whole batch."""
    prob = fill_invalid(torch.sigmoid(logits), mask)  # (B, H, W)
    tp = (prob * target).sum()
    fp = (prob * (1.0 - target)).sum()
    fn = ((1.0 - prob) * target).sum()
    return tp, fp, fn


def bce_loss(logits: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Binary cross-entropy with logits, averaged over the valid pixels.

    Args:
        logits: (B, 1, H, W) or (B, H, W) raw scores.
        target: same spatial shape, 1 = water/cloud, 0 = background.
        valid: optional (B, H, W) bool, True where the label is valid.

    Returns:
        Scalar loss.
    """
    logits, target, mask = _prepare(logits, target, valid)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return masked_mean(per_pixel, mask)


def dice_loss(
    logits: Tensor, target: Tensor, valid: Tensor | None = None, smooth: float = 1.0
) -> Tensor:
    """Soft Dice loss over the valid pixels of the batch: 1 - (2 TP + s) / (2 TP + FP + FN + s).

    The counts are pooled over the whole batch (not averaged per image) so that patches
    without water do not dominate with an undefined ratio; `smooth` keeps it finite.

    Args:
        logits: (B, 1, H, W) or (B, H, W) raw scores.
        target: same spatial shape, {0, 1}.
        valid: optional (B, H, W) bool.
        smooth: additive smoothing s on numerator and denominator.

    Returns:
        Scalar loss in [0, 1].
    """
    tp, fp, fn = _soft_counts(*_prepare(logits, target, valid))
    return 1.0 - (2.0 * tp + smooth) / (2.0 * tp + fp + fn + smooth)


def image_dice_loss(
    logits: Tensor, target: Tensor, valid: Tensor | None = None, smooth: float = 1.0
) -> Tensor:
    """Soft Dice loss of each image, averaged over the images: 1 - mean_b (2 TP_b + s) /
    (2 TP_b + FP_b + FN_b + s).

    The training counterpart of the mean per-image IoU (the OMBRIA paper's figure, and
    `floodlab evaluate`'s ``mean_image_iou``): every image weighs the same, so false
    positives on an image with little water cost as much as a missed flood plain. An image
    without water in its valid pixels still counts: its loss 1 - s / (FP_b + s) pushes its
    false positives to zero (`smooth` keeps it defined). Images with no valid pixel are
    left out of the mean.

    Args:
        logits: (B, 1, H, W) or (B, H, W) raw scores.
        target: same spatial shape, {0, 1}.
        valid: optional (B, H, W) bool.
        smooth: additive smoothing s on each image's numerator and denominator.

    Returns:
        Scalar loss in [0, 1] (0 when no image has a valid pixel).
    """
    logits, target, mask = _prepare(logits, target, valid)
    prob = fill_invalid(torch.sigmoid(logits), mask)
    dims = (1, 2)
    tp = (prob * target).sum(dims)
    fp = (prob * (1.0 - target)).sum(dims)
    fn = ((1.0 - prob) * target).sum(dims)
    per_image = 1.0 - (2.0 * tp + smooth) / (2.0 * tp + fp + fn + smooth)
    scored = mask.flatten(1).any(1).to(per_image)
    return (per_image * scored).sum() / scored.sum().clamp_min(1.0)


def image_lovasz_loss(logits: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Lovasz hinge loss of each image, averaged over the images (Berman et al., 2018).

    The Lovasz extension of each image's Jaccard loss 1 - IoU, evaluated at the hinge
    errors max(0, 1 - z (2 y - 1)): a convex surrogate whose minimisers are the logits that
    get every pixel right with a margin of 1, and whose gradient weighs each pixel by how
    much it would change that image's IoU. With `image_dice_loss` it is the loss of the mean
    per-image IoU that `floodlab evaluate` reports; unlike the soft Dice it acts on the
    logits' margins rather than on probabilities, so it keeps pushing on the pixels that
    decide the thresholded mask. An image without water is penalised by its largest
    false-positive margin. kornia computes it; invalid pixels enter as dry pixels with a
    hinge error below zero, which sort after every scored pixel and so change neither the
    value nor the gradient. Images with no valid pixel are left out of the mean.

    Args:
        logits: (B, 1, H, W) or (B, H, W) raw scores.
        target: same spatial shape, {0, 1}.
        valid: optional (B, H, W) bool.

    Returns:
        Scalar loss, 0 for perfect logits with margin >= 1 (0 when no image has a valid pixel).
    """
    logits, target, mask = _prepare(logits, target, valid)
    # A dry pixel of logit -2 has hinge error 1 + (-2) < 0: no loss, no gradient, and it
    # sorts after every pixel of positive error, so the Jaccard weights before it are unchanged.
    logits = fill_invalid(logits, mask, value=-2.0)
    per_batch = lovasz_hinge_loss(logits[:, None], target)  # the mean over all B images
    scored = mask.flatten(1).any(1).sum()
    return per_batch * logits.shape[0] / scored.clamp_min(1)


def tversky_index(
    logits: Tensor,
    target: Tensor,
    valid: Tensor | None = None,
    alpha: float = 0.3,
    beta: float = 0.7,
    smooth: float = 1.0,
) -> Tensor:
    """Soft Tversky index TI = (TP + s) / (TP + alpha * FP + beta * FN + s).

    `alpha` weights the false positives (predicted water on dry land) and `beta` the false
    negatives (missed water); beta > alpha (0.7 vs 0.3) favours recall of flooded pixels.
    """
    tp, fp, fn = _soft_counts(*_prepare(logits, target, valid))
    return (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


def focal_tversky_loss(
    logits: Tensor,
    target: Tensor,
    valid: Tensor | None = None,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    smooth: float = 1.0,
) -> Tensor:
    """Masked Focal-Tversky loss (1 - TI) ** gamma (Abraham & Khan, 2019).

    Args:
        logits: (B, 1, H, W) or (B, H, W) raw scores.
        target: same spatial shape, {0, 1}.
        valid: optional (B, H, W) bool.
        alpha: weight of false positives in TI.
        beta: weight of false negatives in TI.
        gamma: focal exponent; gamma < 1 keeps a strong gradient near TI = 1.
        smooth: additive smoothing of the index.

    Returns:
        Scalar loss in [0, 1].
    """
    ti = tversky_index(logits, target, valid, alpha, beta, smooth)
    # Clamp keeps the gradient of x ** gamma (gamma < 1) finite at a perfect prediction.
    return (1.0 - ti).clamp_min(1e-6) ** gamma


def focal_loss(
    logits: Tensor,
    target: Tensor,
    valid: Tensor | None = None,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> Tensor:
    """Masked binary focal loss (Lin et al., 2017), mean over valid pixels.

    FL = -alpha_t (1 - p_t) ** gamma log p_t with alpha_t = alpha on water/cloud pixels and
    1 - alpha on background (kornia's `binary_focal_loss_with_logits`).
    """
    logits, target, mask = _prepare(logits, target, valid)
    per_pixel = binary_focal_loss_with_logits(
        logits[:, None], target[:, None], alpha=alpha, gamma=gamma, reduction="none"
    )[:, 0]
    return masked_mean(per_pixel, mask)


def shoreline_distance(target: Tensor, mask: Tensor, radius: int) -> tuple[Tensor, Tensor]:
    """Chessboard distance (pixels) to the label's water/land boundary, up to `radius`.

    A boundary pixel is a valid pixel whose 3x3 neighbourhood is entirely valid and holds
    both classes (so a label edge against missing data is not a shoreline).

    Args:
        target: (B, H, W) {0, 1}, zero where invalid.
        mask: (B, H, W) bool validity.
        radius: largest distance measured; farther pixels get radius + 1.

    Returns:
        distance (B, H, W) float in [0, radius + 1] and the boundary (B, H, W) bool.
    """
    t = target[:, None]  # (B, 1, H, W)
    local_max = F.max_pool2d(t, 3, stride=1, padding=1)
    local_min = -F.max_pool2d(-t, 3, stride=1, padding=1)
    boundary = erode(mask) & ((local_max - local_min)[:, 0] > 0.5)
    # Dilating the boundary r times by a 3x3 square reaches every pixel at chessboard
    # distance <= r; counting how many dilations miss a pixel gives its distance.
    b = boundary.float()[:, None]
    missed = torch.zeros_like(target)
    for r in range(1, radius + 1):
        reached = F.max_pool2d(b, 2 * r + 1, stride=1, padding=r)[:, 0]
        missed = missed + (1.0 - reached)
    distance = torch.where(boundary, torch.zeros_like(missed), missed + 1.0)
    return distance, boundary


def boundary_loss(
    logits: Tensor,
    target: Tensor,
    valid: Tensor | None = None,
    radius: int = 4,
    sigma: float = 2.0,
) -> Tensor:
    """Hydrology-aware shoreline loss: distance-weighted BCE near the water/land boundary
    plus agreement of predicted and true edge maps.

    Flood extent errors concentrate at the shoreline, where mixed pixels, wet soil and
    vegetation make SAR backscatter ambiguous; a plain pixel loss barely sees them because
    they are few. The loss has two parts, both restricted to valid pixels:

    1. *Band BCE*: BCE weighted by exp(-d^2 / (2 sigma^2)) for pixels within `radius`
       pixels (chessboard distance d) of the label's shoreline, normalised by the weights.
    2. *Edge agreement*: mean |Sobel(p) - Sobel(y)| of the predicted probability p and the
       label y, on pixels whose 3x3 neighbourhood is valid (so missing data is never read).

    Args:
        logits: (B, 1, H, W) or (B, H, W) raw scores.
        target: same spatial shape, {0, 1}.
        valid: optional (B, H, W) bool.
        radius: half-width of the shoreline band, in pixels.
        sigma: Gaussian fall-off of the band weights, in pixels.

    Returns:
        Scalar loss; the band term is 0 for batches without a shoreline.
    """
    logits, target, mask = _prepare(logits, target, valid)
    with torch.no_grad():
        distance, _ = shoreline_distance(target, mask, radius)
        weight = torch.exp(-(distance**2) / (2.0 * sigma**2))
        weight = fill_invalid(weight, mask & (distance <= radius))
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    bce = fill_invalid(bce * weight, weight > 0)
    band = bce.sum() / weight.sum().clamp_min(1e-6)

    interior = erode(mask)
    prob = fill_invalid(torch.sigmoid(logits), mask)
    edge_pred = sobel(prob[:, None])[:, 0]  # (B, H, W) gradient magnitude
    edge_true = sobel(target[:, None])[:, 0]
    edge = masked_mean((edge_pred - edge_true).abs(), interior)
    return band + edge
