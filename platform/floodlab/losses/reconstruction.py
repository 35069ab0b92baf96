"""Masked image-reconstruction losses for translation: Charbonnier, SSIM, FFT magnitude, edges.

Inputs are (B, C, H, W) predictions and targets (FLoRA's RGB in [0, 1]); `valid` is an
optional (B, H, W) bool mask of pixels whose target is usable (e.g. cloud-free). Invalid
pixels contribute nothing: losses that look at neighbourhoods (SSIM windows, FFT, Sobel)
first replace them by 0 in both images, so their values never enter the loss.
"""

from __future__ import annotations

import torch
from kornia.filters import spatial_gradient
from kornia.metrics import ssim
from torch import Tensor

from floodlab.losses.masking import erode, filled_pair, masked_mean


def charbonnier_loss(
    pred: Tensor, target: Tensor, valid: Tensor | None = None, eps: float = 1e-3
) -> Tensor:
    """Charbonnier (smooth L1) loss mean(sqrt((pred - target)^2 + eps^2)) over valid pixels.

    Args:
        pred: (B, C, H, W) prediction.
        target: (B, C, H, W) target.
        valid: optional (B, H, W) bool.
        eps: smoothing constant; the loss is ~L1 for |error| >> eps.

    Returns:
        Scalar loss (>= eps).
    """
    pred, target, mask = filled_pair(pred, target, valid)
    diff = pred - target
    return masked_mean(torch.sqrt(diff * diff + eps * eps), mask)


def ssim_loss(
    pred: Tensor,
    target: Tensor,
    valid: Tensor | None = None,
    window_size: int = 11,
    max_val: float = 1.0,
) -> Tensor:
    """1 - mean SSIM over valid pixels (kornia's Gaussian-window SSIM map).

    Args:
        pred: (B, C, H, W) prediction.
        target: (B, C, H, W) target.
        valid: optional (B, H, W) bool.
        window_size: Gaussian window side, in pixels (11 as in Wang et al., 2004).
        max_val: dynamic range of the images (1 for [0, 1]).

    Returns:
        Scalar loss in [0, 2].
    """
    pred, target, mask = filled_pair(pred, target, valid)
    return 1.0 - masked_mean(ssim(pred, target, window_size, max_val), mask)


def log_magnitude_spectrum(x: Tensor) -> Tensor:
    """log(1 + |FFT2(x)|) per channel, orthonormal scaling: (B, C, H, W//2 + 1)."""
    return torch.log1p(torch.fft.rfft2(x.float(), norm="ortho").abs())


def fft_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """L1 between the log-magnitude spectra of prediction and target (spectral realism).

    Penalises missing or spurious spatial frequencies (blur, checkerboard artefacts)
    independently of their phase.

    Args:
        pred: (B, C, H, W) prediction.
        target: (B, C, H, W) target.
        valid: optional (B, H, W) bool; invalid pixels are set to 0 in both images first.

    Returns:
        Scalar loss.
    """
    pred, target, _ = filled_pair(pred, target, valid)
    return (log_magnitude_spectrum(pred) - log_magnitude_spectrum(target)).abs().mean()


def edge_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """L1 between Sobel gradients (x and y) of prediction and target, per channel.

    Args:
        pred: (B, C, H, W) prediction.
        target: (B, C, H, W) target.
        valid: optional (B, H, W) bool; only pixels whose 3x3 neighbourhood is valid count,
            so invalid pixels are never read.

    Returns:
        Scalar loss.
    """
    pred, target, mask = filled_pair(pred, target, valid)
    grad_pred = spatial_gradient(pred)  # (B, C, 2, H, W)
    grad_true = spatial_gradient(target)
    diff = (grad_pred - grad_true).abs().flatten(1, 2)  # (B, 2C, H, W)
    return masked_mean(diff, erode(mask))
