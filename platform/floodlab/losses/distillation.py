"""Knowledge distillation: temperature-scaled logit KD and per-scale feature alignment."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floodlab.losses.masking import as_bhw, fill_invalid, masked_mean, valid_mask


def kd_binary_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 4.0,
    valid: Tensor | None = None,
) -> Tensor:
    """Temperature KD for one-logit (sigmoid) outputs (Hinton et al., 2015).

    Soft targets q = sigmoid(z_t / T); the student is scored with BCE(sigmoid(z_s / T), q)
    averaged over valid pixels and multiplied by T^2, so the gradient magnitude does not
    shrink as T grows. The teacher logits are detached.

    Args:
        student_logits: (B, 1, H, W) or (B, H, W).
        teacher_logits: same shape as the student's.
        temperature: T > 0.
        valid: optional (B, H, W) bool; None = every pixel (KD needs no label).

    Returns:
        Scalar loss.
    """
    s = as_bhw(student_logits).float()
    t = as_bhw(teacher_logits).detach().float()
    mask = valid_mask(valid, s)
    # Zero excluded pixels at the input so nothing there can reach the gradient.
    s, t = fill_invalid(s, mask), fill_invalid(t, mask)
    soft = torch.sigmoid(t / temperature)
    per_pixel = F.binary_cross_entropy_with_logits(s / temperature, soft, reduction="none")
    return masked_mean(per_pixel, mask) * temperature**2


def kd_multiclass_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 4.0,
    valid: Tensor | None = None,
) -> Tensor:
    """Temperature KD for multi-class logits: KL(softmax(z_t/T) || softmax(z_s/T)) * T^2.

    The KL divergence is summed over classes and averaged over valid pixels.

    Args:
        student_logits: (B, K, H, W).
        teacher_logits: (B, K, H, W).
        temperature: T > 0.
        valid: optional (B, H, W) bool.

    Returns:
        Scalar loss.
    """
    mask = valid_mask(valid, student_logits)
    s = fill_invalid(student_logits.float(), mask)
    t = fill_invalid(teacher_logits.detach().float(), mask)
    log_p_s = F.log_softmax(s / temperature, dim=1)
    log_p_t = F.log_softmax(t / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)  # (B, H, W)
    return masked_mean(kl, mask) * temperature**2


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 4.0,
    valid: Tensor | None = None,
) -> Tensor:
    """Dispatch to the binary (one channel) or multi-class KD loss by the channel count."""
    if student_logits.dim() == 4 and student_logits.shape[1] > 1:
        return kd_multiclass_loss(student_logits, teacher_logits, temperature, valid)
    return kd_binary_loss(student_logits, teacher_logits, temperature, valid)


class FeatureDistillation(nn.Module):
    """Per-scale feature alignment of student features to (detached) teacher features.

    For each scale, a 1x1 convolution projects the student's channels to the teacher's
    when the widths differ (an identity otherwise), the projected map is resized to the
    teacher's resolution if needed (bilinear), and the loss is the mean squared error to
    the teacher features (FitNets-style hints, Romero et al., 2015). The loss is averaged
    over scales. The projections are trainable: train them together with the student.

    Args:
        student_channels: channel widths of the student features, one per scale.
        teacher_channels: channel widths of the teacher features, same scales and order.
    """

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int]):
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise ValueError(
                "`len(student_channels) == len(teacher_channels)` must hold, but got "
                f"(student_channels={list(student_channels)}, teacher_channels={list(teacher_channels)})"
            )
        self.proj = nn.ModuleList(
            nn.Identity() if cs == ct else nn.Conv2d(cs, ct, kernel_size=1)
            for cs, ct in zip(student_channels, teacher_channels, strict=True)
        )

    def forward(self, student: Sequence[Tensor], teacher: Sequence[Tensor]) -> Tensor:
        """Mean over scales of MSE(proj(student_s), teacher_s.detach()).

        Args:
            student: per-scale (B, C_s, h, w) features.
            teacher: per-scale (B, C_t, h', w') features (targets; gradients are stopped).

        Returns:
            Scalar loss.
        """
        if len(student) != len(self.proj) or len(teacher) != len(self.proj):
            raise ValueError(
                f"expected {len(self.proj)} scales, got {len(student)} student and {len(teacher)} teacher maps"
            )
        total = student[0].new_zeros((), dtype=torch.float32)
        for proj, s, t in zip(self.proj, student, teacher, strict=True):
            # fp32 projection even when the features come from an autocast (bf16) forward.
            s = proj(s.float())
            if s.shape[-2:] != t.shape[-2:]:
                s = F.interpolate(s, size=t.shape[-2:], mode="bilinear", align_corners=False)
            total = total + F.mse_loss(s.float(), t.detach().float())
        return total / len(self.proj)
