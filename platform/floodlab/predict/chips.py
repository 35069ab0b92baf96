"""Model outputs over every pixel of whole chips: one pass, or windows blended like scenes.

A chip no larger than `window` on either side is predicted in one fully convolutional
pass over the whole chip. The networks pad their input to what they need (a multiple of
their downsampling factor, which also covers FLoRA's attention windows; see
`floodlab.models.blocks.pad_to_multiple`) and crop their outputs back, so every pixel of
the chip gets a prediction. A larger chip is covered by overlapping `window`-pixel windows
and blended exactly as scene prediction does (`floodlab.predict.windows`,
`floodlab.predict.blend`), so memory is bounded by the window, not the chip.

Inputs are physical values with NaN at nodata, normalised here with the run's own
normalisation: once over the whole chip in one pass, once per window when windowed. A
per-sample normalisation (``per_patch``) therefore uses the whole chip's statistics in one
pass and each window's statistics when windowed, which is what scene prediction does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from floodlab.errors import DataError
from floodlab.predict.blend import (
    Normalize,
    PredictFn,
    StripBlender,
    predict_tile,
    window_input,
)
from floodlab.predict.windows import StripPlan, check_window

# The largest chip predicted in one pass: Sen1Floods11's 512x512 chips (the largest of the
# supported datasets) are scored whole, as in its benchmark; larger chips are windowed.
DEFAULT_WINDOW = 512
# Overlap of neighbouring windows of a chip larger than the window (scene prediction's).
DEFAULT_OVERLAP = 64


@dataclass
class ChipPredictor:
    """Predicts whole chips with a batched model, windowed when larger than `window`.

    Attributes:
        predict_fn: (B, C, h, w) normalised input -> output name -> (B, C_k, h, w).
        outputs: the output names to return, in order.
        window: largest chip side predicted in one pass; the window side otherwise.
        overlap: overlap of neighbouring windows (at most window // 2).
        batch_size: chips (or windows) per call of `predict_fn`.
    """

    predict_fn: PredictFn
    outputs: tuple[str, ...] = ("prob",)
    window: int = DEFAULT_WINDOW
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = 8
    _channels: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            check_window(self.window, self.overlap)
        except ValueError as e:
            raise DataError(f"--window/--overlap: {e}") from None

    def windowed(self, height: int, width: int) -> bool:
        """Whether an H x W chip is predicted in blended windows (else in one pass)."""
        return height > self.window or width > self.window

    def __call__(self, images: np.ndarray, normalize: Normalize | None) -> dict[str, np.ndarray]:
        """Outputs for every pixel of each chip.

        Args:
            images: (B, C, H, W) float32 physical values, NaN at nodata.
            normalize: the run's normalisation, (C, h, w) -> (C, h, w); None: NaN -> 0 only.

        Returns:
            output name -> (B, C_k, H, W) float32.
        """
        n, _, height, width = images.shape
        if n == 0:
            raise ValueError("no chips to predict")
        if self.windowed(height, width):
            per_chip = [self._blend(image, normalize) for image in images]
            return {k: np.stack([chip[k] for chip in per_chip]) for k in self.outputs}
        chunks: list[dict[str, np.ndarray]] = []
        for b0 in range(0, n, self.batch_size):
            batch = np.stack(
                [window_input(x, normalize) for x in images[b0 : b0 + self.batch_size]]
            )
            chunks.append(self._call(batch))
        return {k: np.concatenate([c[k] for c in chunks]) for k in self.outputs}

    def _call(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """`predict_fn` on one batch, checked to return every output at the input's size."""
        out = self.predict_fn(np.ascontiguousarray(batch, dtype=np.float32))
        missing = [k for k in self.outputs if k not in out]
        if missing:
            raise DataError(f"the model returned {sorted(out)}, without {missing}")
        result = {k: np.asarray(out[k], dtype=np.float32) for k in self.outputs}
        for k, v in result.items():
            if v.shape[0] != batch.shape[0] or v.shape[2:] != batch.shape[2:]:
                raise DataError(
                    f"the model's '{k}' has shape {v.shape} for an input of shape "
                    f"{batch.shape}; it must keep the input's size"
                )
            self._channels[k] = v.shape[1]
        return result

    def _blend(self, image: np.ndarray, normalize: Normalize | None) -> dict[str, np.ndarray]:
        """One chip (C, H, W) in blended windows -> output name -> (C_k, H, W)."""
        _, height, width = image.shape
        plan = StripPlan.for_scene(height, width, self.window, self.overlap)
        blender = StripBlender(plan)
        values: np.ndarray | None = None
        for k, j in plan.tiles():
            tile = image[:, plan.strip_rows(k)][:, :, plan.block_cols(j)]  # reflected at edges
            # Every pixel is predicted: label validity decides later what is scored.
            everywhere = np.ones(tile.shape[1:], dtype=bool)
            done = blender.add(
                predict_tile(
                    k,
                    j,
                    tile,
                    everywhere,
                    plan,
                    self._call,
                    batch_size=self.batch_size,
                    outputs=self.outputs,
                    normalize=normalize,
                )
            )
            if done is None:
                continue
            if values is None:
                values = np.zeros((done.values.shape[0], height, width), dtype=np.float32)
            n, w = done.valid.shape
            values[:, done.start : done.start + n, done.col : done.col + w] = done.values
        assert values is not None  # the last strip always finishes the chip's last rows
        # predict_tile stacks the outputs along channels, in `outputs` order.
        ends = np.cumsum([self._channels[k] for k in self.outputs])[:-1]
        return dict(zip(self.outputs, np.split(values, ends), strict=True))
