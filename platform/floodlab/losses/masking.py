"""Shape and validity-mask helpers shared by every masked loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def as_bhw(x: Tensor) -> Tensor:
    """Drop a singleton channel axis: (B, 1, H, W) or (B, H, W) -> (B, H, W).

    Raises:
        ValueError: if `x` has more than one channel.
    """
    if x.dim() == 4:
        if x.shape[1] != 1:
            raise ValueError(f"expected one channel (B, 1, H, W), got shape {tuple(x.shape)}")
        return x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"expected (B, H, W) or (B, 1, H, W), got shape {tuple(x.shape)}")
    return x


def valid_mask(valid: Tensor | None, like: Tensor) -> Tensor:
    """Validity as a bool (B, H, W) tensor; all-valid when `valid` is None.

    Args:
        valid: (B, H, W) or (B, 1, H, W) bool/float mask, or None.
        like: a (B, H, W) or (B, C, H, W) tensor giving the shape and device.
    """
    b, h, w = like.shape[0], like.shape[-2], like.shape[-1]
    if valid is None:
        return torch.ones(b, h, w, dtype=torch.bool, device=like.device)
    return as_bhw(valid).to(device=like.device).bool()


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` over the pixels where `mask` is True.

    Masked-out entries are removed with `torch.where` (not multiplied by 0), so a NaN or an
    extreme value there cannot leak into the value or the gradient.

    Args:
        values: (B, H, W) or (B, C, H, W) per-pixel values.
        mask: (B, H, W) bool, broadcast over channels.

    Returns:
        A scalar; 0 (still attached to the graph) when no pixel is valid.
    """
    if values.dim() == 4:
        mask = mask[:, None].expand_as(values)
    kept = torch.where(mask, values, torch.zeros_like(values))
    return kept.sum() / mask.sum().clamp_min(1)


def erode(mask: Tensor, radius: int = 1) -> Tensor:
    """Pixels whose whole (2r+1)^2 neighbourhood inside the image is True.

    Used where a loss looks at neighbours (Sobel, SSIM windows): a pixel next to an
    invalid one is dropped so the invalid pixel's value never enters the loss.

    Args:
        mask: (B, H, W) bool.
        radius: neighbourhood half-size in pixels.
    """
    k = 2 * radius + 1
    # min-pool as -maxpool(-x); the -inf padding ignores pixels outside the image.
    inv = (~mask).float()[:, None]  # (B, 1, H, W)
    return F.max_pool2d(inv, k, stride=1, padding=radius)[:, 0] < 0.5


def fill_invalid(x: Tensor, mask: Tensor, value: float = 0.0) -> Tensor:
    """Replace the pixels of `x` where `mask` is False by a constant (gradient-free there).

    Removed with `torch.where`, so a NaN or an extreme value there cannot reach the result
    or the gradient.

    Args:
        x: (B, H, W) or (B, C, H, W) values.
        mask: (B, H, W) bool, broadcast over channels.
        value: the constant.
    """
    if x.dim() == 4:
        mask = mask[:, None].expand_as(x)
    return torch.where(mask, x, torch.full_like(x, value))


def filled_pair(
    pred: Tensor, target: Tensor, valid: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """fp32 prediction and target with invalid pixels 0 in both, and the (B, H, W) mask.

    For losses that compare two images, so that an invalid pixel's values never enter them.
    """
    mask = valid_mask(valid, pred)
    return fill_invalid(pred.float(), mask), fill_invalid(target.float(), mask), mask
