"""Reconstruction metrics vs numpy on random data with invalid pixels; rank-merge equivalence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from kornia.metrics import ssim

from floodlab.metrics import ReconstructionMetrics, keys

BANDS = ("B4", "B3", "B2", "B8")


def _batch(seed: int, b: int = 2, size: int = 12) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(b, len(BANDS), size, size, generator=g)
    pred = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    valid = torch.rand(b, size, size, generator=g) > 0.2
    return pred, target, valid


def _numpy_reference(pred: np.ndarray, target: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    p = np.moveaxis(pred, 1, -1)[valid].astype(np.float64)  # (N, C) valid spectra
    t = np.moveaxis(target, 1, -1)[valid].astype(np.float64)
    for i, band in enumerate(BANDS):
        out[keys.band_rmse(band)] = math.sqrt(np.mean((p[:, i] - t[:, i]) ** 2))
    out[keys.RMSE] = math.sqrt(np.mean((p - t) ** 2))
    psnr = []
    for k in range(pred.shape[0]):
        v = valid[k]
        mse = np.mean((np.moveaxis(pred[k], 0, -1)[v] - np.moveaxis(target[k], 0, -1)[v]) ** 2)
        psnr.append(10 * math.log10(1.0 / mse))
    out[keys.PSNR] = float(np.mean(psnr))
    cos = np.sum(p * t, 1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(t, axis=1))
    out[keys.SAM] = float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean())

    def ndvi(nir: np.ndarray, red: np.ndarray) -> np.ndarray:  # 0 where both bands are 0
        den = nir + red
        return np.divide(nir - red, den, out=np.zeros_like(den), where=den > 0)

    ndvi_p, ndvi_t = ndvi(p[:, 3], p[:, 0]), ndvi(t[:, 3], t[:, 0])
    out[keys.NDVI_ERROR] = float(np.abs(ndvi_p - ndvi_t).mean())
    return out


def test_metrics_match_numpy_with_invalid_pixels() -> None:
    batches = [_batch(0), _batch(1)]
    metric = ReconstructionMetrics(BANDS)
    for pred, target, valid in batches:
        garbage = torch.where(valid[:, None], pred, torch.full_like(pred, 9.0))
        metric.update(garbage, target, valid)
    got = metric.compute()
    cat = [np.concatenate([b[i].numpy() for b in batches]) for i in range(3)]
    expected = _numpy_reference(*cat)
    for key, value in expected.items():
        assert got[key].item() == pytest.approx(value, rel=1e-6), key


def test_ssim_matches_kornia_when_all_valid_and_is_one_for_identical() -> None:
    pred, target, _ = _batch(2)
    metric = ReconstructionMetrics(BANDS)
    metric.update(pred, target)
    assert metric.compute()[keys.SSIM].item() == pytest.approx(
        ssim(pred, target, 11).mean().item(), rel=1e-5
    )
    same = ReconstructionMetrics(BANDS)
    same.update(target, target)
    assert same.compute()[keys.SSIM].item() == pytest.approx(1.0, abs=1e-5)


def test_ndvi_error_only_with_nir_and_red() -> None:
    assert ReconstructionMetrics(("B4", "B3", "B2", "B8")).has_ndvi
    assert not ReconstructionMetrics(("B4", "B3", "B2")).has_ndvi
    assert not ReconstructionMetrics(("B8", "B11", "B5")).has_ndvi
    metric = ReconstructionMetrics(("B4", "B3", "B2"))
    metric.update(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    assert keys.NDVI_ERROR not in metric.compute()


def test_two_rank_states_merge_to_the_single_process_result() -> None:
    batches = [_batch(s) for s in range(4)]
    whole, rank0, rank1 = (ReconstructionMetrics(BANDS) for _ in range(3))
    for i, batch in enumerate(batches):
        whole.update(*batch)
        (rank0 if i % 2 == 0 else rank1).update(*batch)
    rank0.merge_state(rank1)
    merged, expected = rank0.compute(), whole.compute()
    for key in expected:
        assert merged[key].item() == pytest.approx(expected[key].item(), rel=1e-9), key
