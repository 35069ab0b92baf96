"""Honest translation scores: SAR-alone headline, per-band-mean baseline, oracles apart.

A SAR->optical translation (FLoRA's RGB, CycleGAN's EO bands) is scored on whole chips with
`floodlab.metrics.reconstruction.ReconstructionMetrics` (PSNR, SSIM, SAM, RMSE per band)
on the [0, 1] target scale, over the pixels where every target band has data:

* ``model``: the translation from SAR alone, the headline (what a cloudy flood gives);
* ``mean_image``: the baseline that predicts, for every pixel, the training split's mean
  of each target band (its statistics are saved with the run's normalisation), mapped to
  the target scale as the targets are. A translation that does not beat it has learnt
  nothing about the scene;
* oracles, reported apart and never as the headline: a figure whose input holds the target
  itself. FLoRA's "with optical" path feeds its teacher the optical image of the same
  acquisition that is the translation target, so its translation scores are an oracle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from floodlab.data.load.normalize import apply_coefficients
from floodlab.metrics.reconstruction import ReconstructionMetrics

MODEL = "model"
MEAN_IMAGE = "mean_image"
ORACLE_WITH_OPTICAL = "with_optical"
DEFINITIONS: dict[str, str] = {
    MODEL: "the translation predicted from SAR alone (headline)",
    MEAN_IMAGE: (
        "baseline: every pixel predicted as the training split's per-band mean of the "
        "target, mapped to the target scale like the targets"
    ),
    ORACLE_WITH_OPTICAL: (
        "ORACLE, not a SAR-only result: FLoRA fusing its optical prior, which is the optical "
        "image of the same acquisition as the target it is scored against"
    ),
}


def mean_image(params: Mapping[str, Any]) -> np.ndarray | None:
    """The per-band-mean baseline on the target scale: (C_t,) float32, or None.

    Args:
        params: the run's normalisation (`floodlab.data.load.normalize.normalization_params`),
            whose ``target`` section holds the training split's per-band means.

    Returns:
        Each target band's training mean through the target normalisation; None when the
        parameters have no target section or a band lacks a mean.
    """
    section = params.get("target")
    if not section or any(m is None for m in section.get("mean", [None])):
        return None
    means = np.asarray(section["mean"], dtype=np.float32)[:, None, None]  # (C_t, 1, 1)
    return apply_coefficients(means, section["coefficients"])[:, 0, 0]


class TranslationScores:
    """Accumulates reconstruction metrics of every regime over whole chips.

    Args:
        bands: the target bands, in channel order.
        baseline: the per-band-mean image on the target scale (`mean_image`), or None.
        minus1_1: outputs and targets are in [-1, 1] (CycleGAN) and are mapped to [0, 1].
    """

    def __init__(self, bands: Sequence[str], baseline: np.ndarray | None, minus1_1: bool):
        self.bands = list(bands)
        self.baseline = baseline
        self.minus1_1 = minus1_1
        self.metrics: dict[str, ReconstructionMetrics] = {}

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1.0) / 2.0).clamp(0.0, 1.0) if self.minus1_1 else x

    def update(self, name: str, pred: np.ndarray, target: np.ndarray) -> None:
        """Add a batch of one regime (`MODEL` or `ORACLE_WITH_OPTICAL`).

        Args:
            name: the regime.
            pred: (B, C_t, H, W) translation on the target scale.
            target: (B, C_t, H, W) normalised target, NaN where a band had no data.
        """
        t = torch.from_numpy(np.asarray(target, dtype=np.float32))
        valid = torch.isfinite(t).all(dim=1)  # (B, H, W)
        t = self._unit(torch.nan_to_num(t))
        p = self._unit(torch.from_numpy(np.asarray(pred, dtype=np.float32)))
        self._metric(name).update(p, t, valid)
        if name == MODEL and self.baseline is not None:
            const = torch.from_numpy(self.baseline).view(1, -1, 1, 1).expand_as(t)
            self._metric(MEAN_IMAGE).update(self._unit(const.contiguous()), t, valid)

    def _metric(self, name: str) -> ReconstructionMetrics:
        if name not in self.metrics:
            self.metrics[name] = ReconstructionMetrics(self.bands)
        return self.metrics[name]

    def report(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(headline section, oracle section) of the evaluation report.

        The headline holds ``model`` (SAR alone) and ``mean_image`` (the baseline) with
        their definitions; the oracle section holds the regimes whose input contains the
        target, each with why it is an oracle. Either may be empty.
        """

        def scores(name: str) -> dict[str, float]:
            return {k: float(v) for k, v in self.metrics[name].compute().items()}

        headline: dict[str, Any] = {}
        for name in (MODEL, MEAN_IMAGE):
            if name in self.metrics:
                headline[name] = {**scores(name), "definition": DEFINITIONS[name]}
        if headline and MEAN_IMAGE not in headline:
            headline["note"] = "no per-band-mean baseline: the run saved no target statistics"
        oracle = {
            f"translation_{name}": {**scores(name), "definition": DEFINITIONS[name]}
            for name in self.metrics
            if name not in (MODEL, MEAN_IMAGE)
        }
        return headline, oracle
