"""The model's decision threshold chosen on a held-out split, never on the one it is scored on.

A network's probability of 0.5 is not always where its masks score best: a model that
under-predicts water (a common outcome of short CPU schedules and pooled Dice) maps more
of each flood at a lower threshold. `floodlab evaluate --threshold val` predicts the
validation split once, scores every threshold of `GRID` on it by the report's headline
figure (mean per-image IoU: each image's TP / (TP + FP + FN) over its valid pixels,
images where that is undefined left out) and evaluates the requested split at the best one
(ties: the one nearest 0.5). The choice, the grid and every score are saved with the
report, so the figure can be checked and reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Thresholds tried: 0.05 to 0.95 in steps of 0.05.
GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


def parse_threshold(value: str | float) -> float | str:
    """`--threshold`: a probability in [0, 1], or the name of the split to choose it on.

    Raises:
        ValueError: a number outside [0, 1].
    """
    if isinstance(value, float | int):
        number = float(value)
    else:
        try:
            number = float(value)
        except ValueError:
            return value.strip()
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"a probability in [0, 1] or a split name (val), but got {value}")
    return number


@dataclass
class ThresholdSearch:
    """Per-image flood IoU of the model at every threshold of `grid`, image by image.

    Attributes:
        grid: the thresholds tried, increasing.
        ious: one row per image: its IoU at each threshold (NaN where undefined).
    """

    grid: tuple[float, ...] = GRID
    ious: list[np.ndarray] = field(default_factory=list)

    def add(self, prob: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> None:
        """Score a batch: (B, H, W) probabilities, {0, 1} truth and validity."""
        t = np.asarray(self.grid, dtype=np.float32)[:, None]
        for p, y, v in zip(prob, truth.astype(bool), valid.astype(bool), strict=True):
            pv, yv = p[v].ravel()[None, :], y[v].ravel()[None, :]  # (1, n)
            pred = pv >= t  # (T, n)
            tp = (pred & yv).sum(1)
            fp = (pred & ~yv).sum(1)
            fn = (~pred & yv).sum(1)
            union = (tp + fp + fn).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                self.ious.append(np.where(union > 0, tp / union, np.nan))

    def scores(self) -> np.ndarray:
        """Mean per-image IoU at each threshold (images with an undefined IoU left out)."""
        if not self.ious:
            raise ValueError("no images scored")
        table = np.stack(self.ious)  # (N, T)
        with np.errstate(invalid="ignore"):
            counted = np.isfinite(table).sum(0)
            total = np.nansum(table, axis=0)
        return np.where(counted > 0, total / np.maximum(counted, 1), np.nan)

    def best(self) -> float:
        """The threshold of the highest mean per-image IoU (ties: the nearest to 0.5)."""
        scores = self.scores()
        if not np.isfinite(scores).any():
            raise ValueError("no image has water in its label or the model's prediction")
        top = np.nanmax(scores)
        ties = [t for t, s in zip(self.grid, scores, strict=True) if s >= top - 1e-12]
        return min(ties, key=lambda t: (abs(t - 0.5), t))

    def record(self, split: str) -> dict[str, Any]:
        """What the report saves of the choice."""
        return {
            "split": split,
            "metric": "mean_image_iou",
            "images": len(self.ious),
            "chosen": self.best(),
            "grid": list(self.grid),
            "scores": [None if not np.isfinite(s) else round(float(s), 5) for s in self.scores()],
        }
