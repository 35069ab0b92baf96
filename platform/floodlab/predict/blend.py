"""Seamless blending of overlapping window predictions: weights, strips, vertical merge.

Each window's output is multiplied by a 2-D weight that is 1 in its interior and ramps
down smoothly over the `overlap` pixels at each border (a half-Hann, i.e. raised-cosine,
ramp by default, or a linear ramp). Two neighbouring ramps sum to exactly 1, so the
weighted sum of overlapping windows is a partition of unity: a model that predicts the
same value everywhere yields that value everywhere, and predictions change smoothly
across window borders (no seams). The accumulated weight is still divided out, which
keeps the result right at the scene margins and for any weight kind.

Each window is normalised on its own (`predict_strip`'s `normalize`), so a per-sample
normalisation (``data.normalize: per_patch``) standardises every window by its own valid
pixels, as training standardised every patch; the fixed and z-score modes act pixel by
pixel, where the window makes no difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from floodlab.data.derive import derive_band
from floodlab.errors import DataError
from floodlab.predict.windows import StripPlan

# (B, C, h, w) float32 normalised model input -> {"prob": (B, 1, h, w) in [0, 1],
# optionally "rgb": (B, 3, h, w) in [0, 1]} as numpy arrays.
PredictFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]
WeightKind = Literal["hann", "linear"]
Normalize = Callable[[np.ndarray], np.ndarray]  # (C, h, w) physical, NaN nodata -> normalised


def ramp(overlap: int, kind: WeightKind = "hann") -> np.ndarray:
    """Rising edge of the window weight: (overlap,) float64 in (0, 1).

    Sampled at pixel centres, so ``ramp[i] + ramp[overlap - 1 - i] == 1`` for both kinds.
    """
    t = (np.arange(overlap, dtype=np.float64) + 0.5) / max(overlap, 1)
    if kind == "linear":
        return t
    if kind == "hann":
        return np.sin(0.5 * np.pi * t) ** 2
    raise ValueError(f"Unknown weight kind '{kind}'; available: ['hann', 'linear']")


def window_weights(window: int, overlap: int, kind: WeightKind = "hann") -> np.ndarray:
    """2-D blending weight of one window: (window, window) float32, positive everywhere."""
    w = np.ones(window, dtype=np.float64)
    if overlap:
        r = ramp(overlap, kind)
        w[:overlap] = r
        w[window - overlap :] = r[::-1]
    return np.outer(w, w).astype(np.float32)


def window_input(window: np.ndarray, normalize: Normalize | None) -> np.ndarray:
    """One window's model input: `normalize` applied to it alone (None: NaN -> 0)."""
    if normalize is not None:
        return normalize(window)
    return np.nan_to_num(window, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class StripResult:
    """Weighted predictions of one strip, cropped to the scene's columns.

    Attributes:
        index: the strip's number in the plan.
        acc: (C_out, window, W) float32, sum of weight * output over the strip's windows.
        weight: (window, W) float32, sum of weights.
        valid: (window, W) bool, True where every input band had data.
    """

    index: int
    acc: np.ndarray
    weight: np.ndarray
    valid: np.ndarray


def predict_strip(
    index: int,
    image: np.ndarray,
    valid: np.ndarray,
    plan: StripPlan,
    predict_fn: PredictFn,
    *,
    batch_size: int,
    outputs: tuple[str, ...] = ("prob",),
    weights: np.ndarray | None = None,
    normalize: Normalize | None = None,
) -> StripResult:
    """Predict every window of one strip and blend them horizontally.

    Args:
        index: strip number (carried into the result).
        image: (C, window, padded_width) float32 model input of the strip: physical
            values with NaN at nodata when `normalize` is given, else already normalised.
        valid: (window, padded_width) bool input validity of the strip.
        plan: the scene's plan.
        predict_fn: batched model; see `PredictFn`.
        batch_size: windows per call of `predict_fn`.
        outputs: output keys to blend, concatenated along channels in this order.
        weights: (window, window) weights; default `window_weights(window, overlap)`.
        normalize: normalisation applied to each (C, window, window) window on its own
            (per-patch statistics are the window's); None: NaN -> 0 only.

    Returns:
        The strip's weighted sums, cropped to scene columns ``[0, W)``.
    """
    win, x_first = plan.window, int(plan.col_origins[0])
    w2d = window_weights(win, plan.overlap) if weights is None else weights
    starts = [int(x - x_first) for x in plan.col_origins]  # strip columns of each window
    acc: np.ndarray | None = None
    weight = np.zeros((win, plan.padded_width), dtype=np.float32)
    for b0 in range(0, len(starts), batch_size):
        chunk = starts[b0 : b0 + batch_size]
        batch = np.stack(
            [window_input(image[:, :, s : s + win], normalize) for s in chunk]
        )  # (B, C, win, win)
        out = predict_fn(np.ascontiguousarray(batch, dtype=np.float32))
        missing = [k for k in outputs if k not in out]
        if missing:
            raise DataError(f"the model returned {sorted(out)}, without {missing}")
        pred = np.concatenate([np.asarray(out[k], dtype=np.float32) for k in outputs], axis=1)
        if pred.shape[0] != len(chunk) or pred.shape[2:] != (win, win):
            raise DataError(
                f"the model returned outputs of shape {pred.shape[:1] + pred.shape[2:]} for "
                f"{len(chunk)} windows of {win}x{win}; it must keep the input's size (try --window "
                "with the training patch size)"
            )
        if acc is None:
            acc = np.zeros((pred.shape[1], win, plan.padded_width), dtype=np.float32)
        for j, s in enumerate(chunk):
            acc[:, :, s : s + win] += pred[j] * w2d
            weight[:, s : s + win] += w2d
    assert acc is not None  # a plan always has at least one window
    cols = slice(plan.col_offset, plan.col_offset + plan.width)
    return StripResult(index, acc[:, :, cols], weight[:, cols], valid[:, cols])


@dataclass
class FinishedRows:
    """Blended scene rows ready to be written.

    Attributes:
        start: first scene row.
        values: (C_out, n, W) float32 blended outputs (NaN where the input had no data).
        valid: (n, W) bool input validity.
    """

    start: int
    values: np.ndarray
    valid: np.ndarray


class StripBlender:
    """Merges strips vertically, in order, and hands out finished rows.

    Holds only the `overlap` rows that the next strip still adds to, so memory is
    independent of the scene's height.
    """

    def __init__(self, plan: StripPlan):
        self.plan = plan
        self._next = 0
        self._carry: tuple[np.ndarray, np.ndarray] | None = None  # (acc, weight) overlap rows

    def add(self, strip: StripResult) -> FinishedRows | None:
        """Add strip `strip.index` (strips must arrive in order); return finished rows."""
        plan = self.plan
        if strip.index != self._next:
            raise ValueError(
                f"strips must arrive in order: expected {self._next}, got {strip.index}"
            )
        self._next += 1
        acc, weight = strip.acc, strip.weight
        if self._carry is not None and plan.overlap:
            acc[:, : plan.overlap] += self._carry[0]
            weight[: plan.overlap] += self._carry[1]
        # Rows from the next strip's origin on are still open: carry them over.
        self._carry = (acc[:, plan.stride :].copy(), weight[plan.stride :].copy())
        start, stop = plan.finished_rows(strip.index)
        if stop <= start:
            return None
        y = int(plan.row_origins[strip.index])
        rows = slice(start - y, stop - y)
        values = acc[:, rows] / weight[rows][None]
        valid = strip.valid[rows]
        values[:, ~valid] = np.nan
        return FinishedRows(start, values, valid)


class StripModel:
    """Turns one strip of physical values into its blended, weighted predictions.

    Holds everything a strip needs (model, band derivation, normalisation), so the same
    object runs in the driver or, pickled, in Ray workers.
    """

    def __init__(
        self,
        predict_fn: PredictFn,
        plan: StripPlan,
        model_bands: Sequence[str],
        read_bands: Sequence[str],
        normalize: Normalize | None,
        batch_size: int,
        outputs: tuple[str, ...],
    ):
        self.predict_fn, self.plan = predict_fn, plan
        self.model_bands, self.read_bands = list(model_bands), list(read_bands)
        self.normalize, self.batch_size, self.outputs = normalize, batch_size, outputs

    def model_input(self, raw: np.ndarray) -> np.ndarray:
        """(C_read, h, w) physical values -> (C_model, h, w) physical model bands.

        Derived bands are computed here; normalisation happens per window in
        `predict_strip`.
        """
        index = {b: i for i, b in enumerate(self.read_bands)}

        def get(band: str) -> np.ndarray:
            return raw[index[band]]

        return np.stack(
            [get(b) if b in index else derive_band(b, get) for b in self.model_bands]
        ).astype(np.float32, copy=False)

    def __call__(self, index: int, raw: np.ndarray) -> StripResult:
        """Predict strip `index` from its (C_read, window, padded_width) physical values."""
        valid = np.isfinite(raw).all(axis=0)
        return predict_strip(
            index,
            self.model_input(raw),
            valid,
            self.plan,
            self.predict_fn,
            batch_size=self.batch_size,
            outputs=self.outputs,
            normalize=self.normalize,
        )
