"""Test-time augmentation: a model's outputs averaged over flips and quarter turns.

Overhead SAR and optical images have no preferred orientation (flood maps are trained with
random flips and quarter turns for that reason), so a model's prediction of a flipped or
turned input, turned back, is as good an estimate as the plain one; their mean is a
better one. `TransformMean` wraps any `PredictFn`: each transform of the batch is
predicted, its outputs are turned back, and every output is averaged over the transforms.

Modes (``--tta``):

- ``none``: the plain prediction (1 pass);
- ``flips``: identity, horizontal flip, vertical flip and both (a half turn): the four
  transforms that keep a window's shape (4 passes);
- ``dihedral``: the eight symmetries of the square, every quarter turn with and without a
  flip (8 passes). A quarter turn swaps a window's height and width, which every floodlab
  network accepts (they pad to what they need and crop back).

The cost is one forward pass per transform; memory stays that of one pass (transforms
run one after another and are summed in place).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from floodlab.predict.blend import PredictFn

TTAMode = Literal["none", "flips", "dihedral"]
TTA_MODES: tuple[str, ...] = ("none", "flips", "dihedral")

# (quarter turns, flip of the last axis after turning), applied to (..., H, W) arrays.
Transform = tuple[int, bool]
_TRANSFORMS: dict[str, tuple[Transform, ...]] = {
    "none": ((0, False),),
    # A half turn is both flips, so these four keep the window's shape.
    "flips": ((0, False), (0, True), (2, False), (2, True)),
    "dihedral": tuple((k, f) for k in range(4) for f in (False, True)),
}


def transforms(mode: str) -> tuple[Transform, ...]:
    """The transforms of a TTA mode.

    Raises:
        ValueError: an unknown mode.
    """
    try:
        return _TRANSFORMS[mode]
    except KeyError:
        raise ValueError(f"tta: unknown mode {mode!r}; choose from {list(TTA_MODES)}") from None


def apply(x: np.ndarray, t: Transform) -> np.ndarray:
    """Transform the last two axes of `x`: `k` quarter turns, then a flip if asked."""
    k, flip = t
    y = np.rot90(x, k, axes=(-2, -1))
    return y[..., ::-1] if flip else y


def invert(y: np.ndarray, t: Transform) -> np.ndarray:
    """Undo `apply(., t)` on the last two axes."""
    k, flip = t
    if flip:
        y = y[..., ::-1]
    return np.rot90(y, -k, axes=(-2, -1))


@dataclass
class TransformMean:
    """A `PredictFn` whose outputs are averaged over the transforms of a TTA mode.

    Picklable when the wrapped function is (Ray scene workers receive it whole).

    Attributes:
        predict_fn: (B, C, h, w) normalised input -> output name -> (B, C_k, h, w).
        mode: "none", "flips" or "dihedral" (see the module docstring).
    """

    predict_fn: PredictFn
    mode: str = "dihedral"

    def __post_init__(self) -> None:
        self._transforms = transforms(self.mode)

    @property
    def passes(self) -> int:
        """Forward passes per batch."""
        return len(self._transforms)

    def __call__(self, batch: np.ndarray) -> Mapping[str, np.ndarray]:
        """Every output of `predict_fn`, averaged over the transformed inputs."""
        sums: dict[str, np.ndarray] = {}
        for t in self._transforms:
            out = self.predict_fn(np.ascontiguousarray(apply(batch, t)))
            for name, value in out.items():
                back = invert(np.asarray(value, dtype=np.float32), t)
                if name in sums:
                    sums[name] += back
                else:
                    sums[name] = back.copy()
        n = np.float32(len(self._transforms))
        return {name: total / n for name, total in sums.items()}


def with_tta(predict_fn: PredictFn, mode: str) -> PredictFn:
    """`predict_fn` itself for ``none``, else wrapped in a `TransformMean` of `mode`."""
    transforms(mode)  # refuses an unknown mode
    return predict_fn if mode == "none" else TransformMean(predict_fn, mode)
