"""GAN losses: LSGAN adversarial terms, cycle consistency and identity (L1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from floodlab.losses.masking import filled_pair, masked_mean


def lsgan_loss(logits: Tensor, real: bool) -> Tensor:
    """Least-squares GAN loss (Mao et al., 2017): MSE of discriminator outputs to 1 or 0.

    The discriminator judges whole (PatchGAN) patches, so no validity mask applies here.

    Args:
        logits: discriminator outputs, e.g. (B, 1, h, w) PatchGAN scores.
        real: the label the outputs are pulled towards: True -> 1, False -> 0.

    Returns:
        Scalar loss.
    """
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.mse_loss(logits.float(), target.float())


def lsgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator LSGAN loss 0.5 * (MSE(D(real), 1) + MSE(D(fake), 0)).

    The 0.5 halves the discriminator's learning speed relative to the generator, as in
    the CycleGAN reference implementation.
    """
    return 0.5 * (lsgan_loss(real_logits, True) + lsgan_loss(fake_logits, False))


def lsgan_generator_loss(fake_logits: Tensor) -> Tensor:
    """Generator LSGAN loss MSE(D(G(x)), 1): fool the discriminator."""
    return lsgan_loss(fake_logits, True)


def l1_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean absolute error over valid pixels and channels.

    Args:
        pred: (B, C, H, W).
        target: (B, C, H, W).
        valid: optional (B, H, W) bool.
    """
    pred, target, mask = filled_pair(pred, target, valid)
    return masked_mean((pred - target).abs(), mask)


def cycle_loss(reconstructed: Tensor, original: Tensor, valid: Tensor | None = None) -> Tensor:
    """Cycle consistency L1: ||F(G(x)) - x||_1 (Zhu et al., 2017)."""
    return l1_loss(reconstructed, original, valid)


def identity_loss(mapped: Tensor, original: Tensor, valid: Tensor | None = None) -> Tensor:
    """Identity L1: ||G(y) - y||_1 for an image y already in G's output domain."""
    return l1_loss(mapped, original, valid)
