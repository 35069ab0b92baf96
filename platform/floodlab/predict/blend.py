"""Seamless blending of overlapping window predictions: weights, tiles, merging.

Each window's output is multiplied by a 2-D weight that is 1 in its interior and ramps
down smoothly over the `overlap` pixels at each border (a half-Hann, i.e. raised-cosine,
ramp by default, or a linear ramp). Two neighbouring ramps sum to exactly 1, so the
weighted sum of overlapping windows is a partition of unity: a model that predicts the
same value everywhere yields that value everywhere, and predictions change smoothly
across window borders (no seams). The accumulated weight is still divided out, which
keeps the result right at the scene margins and for any weight kind.

Each window is normalised on its own (`predict_tile`'s `normalize`), so a per-sample
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
class TileResult:
    """Weighted predictions of one tile (one column block of one strip), uncropped.

    Attributes:
        strip: the tile's strip (row of windows) in the plan.
        block: the tile's column block in the plan.
        acc: (C_out, window, span) float32, sum of weight * output over the tile's windows,
            over the padded columns ``plan.block_span(block)``.
        weight: (window, span) float32, sum of weights.
        valid: (window, span) bool, True where every input band had data.
    """

    strip: int
    block: int
    acc: np.ndarray
    weight: np.ndarray
    valid: np.ndarray


def predict_tile(
    strip: int,
    block: int,
    image: np.ndarray,
    valid: np.ndarray,
    plan: StripPlan,
    predict_fn: PredictFn,
    *,
    batch_size: int,
    outputs: tuple[str, ...] = ("prob",),
    weights: np.ndarray | None = None,
    normalize: Normalize | None = None,
) -> TileResult:
    """Predict every window of one tile and blend them horizontally.

    Args:
        strip: the tile's strip number (carried into the result).
        block: the tile's column block (carried into the result).
        image: (C, window, span) float32 model input of the tile, over the padded columns
            ``plan.block_span(block)``: physical values with NaN at nodata when `normalize`
            is given, else already normalised.
        valid: (window, span) bool input validity of the tile.
        plan: the scene's plan.
        predict_fn: batched model; see `PredictFn`.
        batch_size: windows per call of `predict_fn`.
        outputs: output keys to blend, concatenated along channels in this order.
        weights: (window, window) weights; default `window_weights(window, overlap)`.
        normalize: normalisation applied to each (C, window, window) window on its own
            (per-patch statistics are the window's); None: NaN -> 0 only.

    Returns:
        The tile's weighted sums over its padded columns.
    """
    win = plan.window
    x0, x1 = plan.block_span(block)
    w2d = window_weights(win, plan.overlap) if weights is None else weights
    starts = [int(x - x0) for x in plan.block_origins(block)]  # tile columns of each window
    acc: np.ndarray | None = None
    weight = np.zeros((win, x1 - x0), dtype=np.float32)
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
            acc = np.zeros((pred.shape[1], win, x1 - x0), dtype=np.float32)
        for j, s in enumerate(chunk):
            acc[:, :, s : s + win] += pred[j] * w2d
            weight[:, s : s + win] += w2d
    assert acc is not None  # a block always has at least one window
    return TileResult(strip, block, acc, weight, valid)


@dataclass
class FinishedRows:
    """A blended piece of the scene ready to be written: some rows of one band.

    Attributes:
        start: first scene row.
        col: first scene column.
        values: (C_out, n, w) float32 blended outputs (NaN where the input had no data).
        valid: (n, w) bool input validity.
    """

    start: int
    col: int
    values: np.ndarray
    valid: np.ndarray


class StripBlender:
    """Merges tiles, in `plan.tiles()` order, into finished pieces of the scene.

    A tile holds every window its band's columns get from its strip, so it needs nothing
    from its left or right neighbours: it is blended with the `overlap` rows its band's
    previous strip still adds to, and its finished rows of the band are handed out at
    once. The blender holds `overlap` rows of one band, nothing that grows with the
    scene's width or height.
    """

    def __init__(self, plan: StripPlan):
        self.plan = plan
        self._next = 0  # position of the next tile in `plan.tiles()` order
        self._above: tuple[np.ndarray, np.ndarray] | None = None  # (acc, weight) rows

    def add(self, tile: TileResult) -> FinishedRows | None:
        """Add the next tile (tiles must arrive in `plan.tiles()` order).

        Returns:
            The rows of its band the tile finishes (None for a strip that finishes no
            scene row).
        """
        plan = self.plan
        j, k = divmod(self._next, plan.n_strips)
        if (tile.strip, tile.block) != (k, j):
            raise ValueError(
                f"tiles must arrive in order: expected (strip {k}, block {j}), got "
                f"(strip {tile.strip}, block {tile.block})"
            )
        self._next += 1
        ov = plan.overlap
        # Tiles from Ray's object store are read-only views of shared memory.
        acc = tile.acc if tile.acc.flags.writeable else tile.acc.copy()
        weight = tile.weight if tile.weight.flags.writeable else tile.weight.copy()
        if ov:
            if k > 0 and self._above is not None:
                acc[:, :ov] += self._above[0]
                weight[:ov] += self._above[1]
            self._above = (acc[:, plan.stride :].copy(), weight[plan.stride :].copy())
        start, stop = plan.finished_rows(k)
        if stop <= start:
            return None
        x0, _ = plan.block_span(j)
        y = int(plan.row_origins[k])
        c_start, c_stop = plan.finished_cols(j)
        rows, cols = slice(start - y, stop - y), slice(c_start - x0, c_stop - x0)
        values = acc[:, rows, cols] / weight[rows, cols][None]
        valid = tile.valid[rows, cols]
        values[:, ~valid] = np.nan
        return FinishedRows(start, c_start, values, valid)


class StripModel:
    """Turns one tile of physical values into its blended, weighted predictions.

    Holds everything a tile needs (model, band derivation, normalisation), so the same
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
        `predict_tile`.
        """
        index = {b: i for i, b in enumerate(self.read_bands)}

        def get(band: str) -> np.ndarray:
            return raw[index[band]]

        return np.stack(
            [get(b) if b in index else derive_band(b, get) for b in self.model_bands]
        ).astype(np.float32, copy=False)

    def __call__(self, strip: int, block: int, raw: np.ndarray) -> TileResult:
        """Predict tile (`strip`, `block`) from its (C_read, window, span) physical values."""
        valid = np.isfinite(raw).all(axis=0)
        return predict_tile(
            strip,
            block,
            self.model_input(raw),
            valid,
            self.plan,
            self.predict_fn,
            batch_size=self.batch_size,
            outputs=self.outputs,
            normalize=self.normalize,
        )
