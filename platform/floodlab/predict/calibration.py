"""Calibration of predicted probabilities: binned counts, reliability diagram, ECE.

While a split is scored, every valid pixel's predicted probability falls into one of
`BINS` equal-width bins of [0, 1]; each bin keeps its pixel count, the sum of their
probabilities and how many of them are labelled positive (water, or cloud). Memory is a
few numbers per bin, whatever the split's size, and no second pass over the data is
needed. From these:

* the **reliability diagram** plots each bin's mean predicted probability against the
  observed positive frequency (a calibrated model lies on the diagonal), with the pixel
  count of every bin beneath;
* the **expected calibration error** is ``ECE = sum_b (n_b / N) * |freq_b - conf_b|``: the
  pixel-weighted mean gap between observed frequency and mean predicted probability.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from floodlab.io import save_figure

BINS = 10
ECE = "ece"
ECE_DEFINITION = (
    f"expected calibration error over every valid pixel: the predicted probabilities fall in "
    f"{BINS} equal-width bins of [0, 1]; ECE = sum over bins of (pixels in bin / all pixels) "
    "* |observed positive frequency - mean predicted probability| of the bin (0 = calibrated)"
)


class CalibrationCounts:
    """Per-bin counts of predicted probabilities against labels (see the module docstring).

    Args:
        bins: equal-width bins of [0, 1].
    """

    def __init__(self, bins: int = BINS):
        self.bins = bins
        self.count = np.zeros(bins, dtype=np.int64)
        self.prob_sum = np.zeros(bins, dtype=np.float64)
        self.positive = np.zeros(bins, dtype=np.int64)

    def add(self, prob: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> None:
        """Count the valid pixels of a batch.

        Args:
            prob: predicted probabilities in [0, 1], any shape.
            truth: labels (True = positive), the same shape.
            valid: pixels that count, the same shape.
        """
        keep = np.asarray(valid, dtype=bool)  # a 0/1 mask must not index pixels 0 and 1
        p = np.asarray(prob, dtype=np.float64)[keep]
        t = np.asarray(truth, dtype=bool)[keep]
        index = np.clip((p * self.bins).astype(np.int64), 0, self.bins - 1)
        self.count += np.bincount(index, minlength=self.bins)
        self.prob_sum += np.bincount(index, weights=p, minlength=self.bins)
        self.positive += np.bincount(index[t], minlength=self.bins)

    def report(self) -> dict[str, Any]:
        """Bins, counts, mean probability and observed frequency per bin (None where a bin
        is empty), the pixels counted and the ECE (None without pixels)."""
        n = int(self.count.sum())
        filled = self.count > 0
        conf = np.divide(self.prob_sum, self.count, out=np.zeros(self.bins), where=filled)
        freq = np.divide(self.positive, self.count, out=np.zeros(self.bins), where=filled)
        ece = float((self.count * np.abs(freq - conf)).sum() / n) if n else None
        return {
            "bin_edges": np.linspace(0.0, 1.0, self.bins + 1).round(6).tolist(),
            "pixels": n,
            "count": self.count.tolist(),
            "positive": self.positive.tolist(),
            "mean_probability": [
                float(c) if f else None for c, f in zip(conf, filled, strict=True)
            ],
            "observed_frequency": [
                float(q) if f else None for q, f in zip(freq, filled, strict=True)
            ],
            ECE: ece,
        }


def write_reliability(path: Path, calibration: dict[str, dict[str, Any]], title: str) -> Path:
    """reliability.png: each predictor's reliability curve and its pixels per bin.

    Args:
        path: the PNG to write.
        calibration: predictor -> `CalibrationCounts.report()`.
        title: the figure's title (split and label).

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.0, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    top.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    names = list(calibration)
    width = 1.0 / (BINS * max(len(names), 1))
    for k, name in enumerate(names):
        rep = calibration[name]
        edges = np.asarray(rep["bin_edges"])
        points = [
            (c, f)
            for c, f in zip(rep["mean_probability"], rep["observed_frequency"], strict=True)
            if c is not None
        ]
        ece = rep[ECE]
        label = f"{name} (ECE {ece:.3f})" if ece is not None else name
        if points:
            xs, ys = zip(*points, strict=True)
            top.plot(xs, ys, marker="o", linewidth=1.5, label=label)
        left = edges[:-1] + k * width
        bottom.bar(left, rep["count"], width=width, align="edge", label=name)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("observed positive frequency")
    top.set_title(title, fontsize=9)
    top.legend(fontsize=8, loc="upper left")
    bottom.set_yscale("log")
    bottom.set_xlabel("predicted probability (bin)")
    bottom.set_ylabel("pixels")
    fig.tight_layout()
    return save_figure(fig, path)
