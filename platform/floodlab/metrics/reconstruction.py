"""Masked reconstruction metrics for translation: PSNR, SSIM, SAM, band RMSE, NDVI consistency.

Images are compared on a [0, 1] scale (data range 1; CycleGAN maps its [-1, 1] outputs
back first). Only valid pixels count. NDVI consistency needs both NIR (B8) and red (B4)
among the bands: of the band sets in `floodlab.bands`, only CycleGAN's ``rgb_nir``
(B4, B3, B2, B8) allows it; ``rgb`` (FLoRA's target) and ``nir_swir_re`` (no red) do not,
and the key is then absent. NDVI is computed on the [0, 1] values, which equals NDVI of
reflectance when both bands share the same linear scaling from zero (the fixed
`data.target_clip` of the data layer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from kornia.metrics import ssim
from torch import Tensor
from torchmetrics import Metric

from floodlab.losses.masking import fill_invalid, valid_mask
from floodlab.metrics import keys

NIR, RED = "B8", "B4"
_EPS = 1e-8


def ndvi(nir: Tensor, red: Tensor) -> Tensor:
    """NDVI = (NIR - red) / (NIR + red), 0 where both are 0."""
    return (nir - red) / (nir + red).clamp_min(_EPS)


def spectral_angle(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel spectral angle in degrees between (B, C, H, W) spectra: (B, H, W)."""
    dot = (pred * target).sum(1)
    norms = pred.norm(dim=1) * target.norm(dim=1)
    cos = (dot / norms.clamp_min(_EPS)).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.arccos(cos))


class ReconstructionMetrics(Metric):
    """Accumulated, DDP-sum-reduced reconstruction metrics over valid pixels.

    - PSNR (dB): per image from its masked MSE over all bands, then averaged over images.
    - SSIM: kornia's 11x11 Gaussian SSIM map averaged over valid pixels and bands.
    - SAM (degrees): spectral angle averaged over valid pixels where both spectra are
      non-zero.
    - RMSE: overall and per band (``rmse/<band>``), from accumulated squared errors.
    - NDVI error: mean |NDVI(pred) - NDVI(target)| when B8 and B4 are both present.

    Args:
        bands: band names of the channels, in order (e.g. ``("B4", "B3", "B2")``).
        window_size: SSIM window side in pixels.
    """

    is_differentiable = False
    full_state_update = False
    sq_err: Tensor
    pixels: Tensor
    psnr_sum: Tensor
    images: Tensor
    ssim_sum: Tensor
    sam_sum: Tensor
    sam_pixels: Tensor
    ndvi_sum: Tensor
    ndvi_pixels: Tensor

    def __init__(self, bands: Sequence[str], window_size: int = 11, **kwargs: object):
        super().__init__(**kwargs)
        self.bands = tuple(bands)
        self.window_size = window_size
        self._nir_red = (
            (self.bands.index(NIR), self.bands.index(RED))
            if NIR in self.bands and RED in self.bands
            else None
        )
        zero = torch.zeros((), dtype=torch.float64)
        self.add_state(
            "sq_err", torch.zeros(len(self.bands), dtype=torch.float64), dist_reduce_fx="sum"
        )
        for name in (
            "pixels",
            "psnr_sum",
            "images",
            "ssim_sum",
            "sam_sum",
            "sam_pixels",
            "ndvi_sum",
            "ndvi_pixels",
        ):
            self.add_state(name, zero.clone(), dist_reduce_fx="sum")

    @property
    def has_ndvi(self) -> bool:
        """Whether NIR (B8) and red (B4) are among the bands."""
        return self._nir_red is not None

    def update(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add a batch.

        Args:
            pred: (B, C, H, W) prediction in [0, 1].
            target: (B, C, H, W) target in [0, 1].
            valid: optional (B, H, W) bool.
        """
        if pred.shape[1] != len(self.bands):
            raise ValueError(
                f"expected {len(self.bands)} bands {self.bands}, got shape {tuple(pred.shape)}"
            )
        mask = valid_mask(valid, pred)
        pred = fill_invalid(pred.detach().double(), mask)
        target = fill_invalid(target.detach().to(pred), mask)
        m = mask[:, None].to(pred)  # (B, 1, H, W)
        n_valid = m.sum((1, 2, 3))  # (B,) valid pixels per image

        sq = (pred - target) ** 2 * m  # (B, C, H, W)
        self.sq_err += sq.sum((0, 2, 3))
        self.pixels += n_valid.sum()

        has = n_valid > 0
        mse = sq.sum((1, 2, 3)) / (n_valid * pred.shape[1]).clamp_min(1)
        psnr = 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))  # capped at 100 dB
        self.psnr_sum += psnr[has].sum()
        self.images += has.sum()

        ssim_map = ssim(pred.float(), target.float(), self.window_size, 1.0).double()
        self.ssim_sum += (ssim_map.mean(1) * m[:, 0]).sum()

        nonzero = mask & (pred.norm(dim=1) > _EPS) & (target.norm(dim=1) > _EPS)
        self.sam_sum += spectral_angle(pred, target)[nonzero].sum()
        self.sam_pixels += nonzero.sum()

        if self._nir_red is not None:
            i_nir, i_red = self._nir_red
            diff = (
                ndvi(pred[:, i_nir], pred[:, i_red]) - ndvi(target[:, i_nir], target[:, i_red])
            ).abs()
            self.ndvi_sum += diff[mask].sum()
            self.ndvi_pixels += mask.sum()

    def compute(self) -> dict[str, Tensor]:
        """PSNR, SSIM, SAM, RMSE (overall and per band) and NDVI error where computable."""
        nan = torch.tensor(math.nan, dtype=torch.float64, device=self.sq_err.device)

        def ratio(num: Tensor, den: Tensor) -> Tensor:
            return num / den if den > 0 else nan

        out = {
            keys.PSNR: ratio(self.psnr_sum, self.images),
            keys.SSIM: ratio(self.ssim_sum, self.pixels),
            keys.SAM: ratio(self.sam_sum, self.sam_pixels),
            keys.RMSE: ratio(self.sq_err.sum(), self.pixels * len(self.bands)).sqrt(),
        }
        for band, err in zip(self.bands, self.sq_err, strict=True):
            out[keys.band_rmse(band)] = ratio(err, self.pixels).sqrt()
        if self._nir_red is not None:
            out[keys.NDVI_ERROR] = ratio(self.ndvi_sum, self.ndvi_pixels)
        return out
