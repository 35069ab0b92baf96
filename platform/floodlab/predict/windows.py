"""Sliding-window geometry of a scene: window origins, reflection indices and row strips.

A scene of H x W pixels is covered by square windows of side `window` spaced
`stride = window - overlap` apart. The grid starts `overlap` pixels *before* the scene
(and ends at least `overlap` pixels after it), the missing pixels being filled by
reflecting the scene at its edges (numpy's ``"reflect"`` mode: the edge pixel is not
repeated). Every scene pixel therefore lies in the full-weight interior of some window,
so edge pixels are predicted with as much context as interior ones, and the blending
weights (floodlab.predict.blend) sum to one everywhere inside the scene.

A *strip* is one row of windows: it spans rows ``[y, y + window)`` of the padded scene.
The scene's columns are cut into *bands* of `band_cols` output columns. A *tile* is the
part of one strip that one band needs: every window of the strip that touches the band's
columns (so the windows at a band's edges are predicted for both bands it touches). A
tile therefore holds every prediction its band's pixels get from that strip, and bands
never exchange anything: tiles are predicted band by band, top to bottom, and blended by
the driver, which carries only the `overlap` rows of one band to its next strip. Reads,
model inputs, outputs and carries are all bounded by the band, whatever the scene's width
and height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Output columns per band by default: a multiple of 256 (output tiles of 256 px are then
# each written by one band). The windows predicted twice, where bands meet, add about
# one window in eight (256 px windows, 64 px overlap); wider bands add fewer, but hold
# more memory.
DEFAULT_BAND_COLS = 2048


def axis_origins(length: int, window: int, overlap: int) -> np.ndarray:
    """Origins of the windows covering one axis of a scene, in scene pixel coordinates.

    Args:
        length: scene extent along the axis (pixels, >= 1).
        window: window side (pixels).
        overlap: overlap between neighbouring windows (pixels, ``0 <= overlap <= window // 2``).

    Returns:
        (n,) int64 origins, the first at ``-overlap``, spaced ``window - overlap`` apart,
        the last window ending at or after ``length + overlap``.
    """
    check_window(window, overlap)
    if length < 1:
        raise ValueError(f"`length >= 1` must hold, but got (length={length})")
    stride = window - overlap
    span = length + 2 * overlap  # the padded extent every window must cover
    n = 1 if span <= window else math.ceil((span - window) / stride) + 1
    return -overlap + stride * np.arange(n, dtype=np.int64)


def check_window(window: int, overlap: int) -> None:
    """Raise ValueError unless ``window >= 1`` and ``0 <= overlap <= window // 2``.

    Overlaps above half a window would let three windows meet at a pixel and waste work.
    """
    if window < 1:
        raise ValueError(f"`window >= 1` must hold, but got (window={window})")
    if not 0 <= overlap <= window // 2:
        raise ValueError(
            f"`0 <= overlap <= window // 2` must hold, but got (overlap={overlap}, window={window})"
        )


def reflect_index(index: np.ndarray, length: int) -> np.ndarray:
    """Map (possibly out-of-range) pixel indices into ``[0, length)`` by mirror reflection.

    Matches ``np.pad(..., mode="reflect")`` for any pad width (repeated reflection when
    the pad exceeds the scene), e.g. for length 4: ``-2 -1 0 1 2 3 4 5 -> 2 1 0 1 2 3 2 1``.

    Args:
        index: integer indices, any shape.
        length: extent of the axis (>= 1).

    Returns:
        int64 indices of the same shape, all in ``[0, length)``.
    """
    index = np.asarray(index, dtype=np.int64)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    r = np.mod(index, period)
    return np.where(r >= length, period - r, r)


@dataclass(frozen=True)
class StripPlan:
    """Where the windows of a scene go and which scene pixels each tile reads.

    Attributes:
        height: scene rows.
        width: scene columns.
        window: window side (pixels).
        overlap: window overlap (pixels).
        row_origins: (n_strips,) first padded row of each strip.
        col_origins: (n_cols,) first padded column of each window within a strip.
        band_cols: output columns per band (the last band may hold fewer).
    """

    height: int
    width: int
    window: int
    overlap: int
    row_origins: np.ndarray
    col_origins: np.ndarray
    band_cols: int = DEFAULT_BAND_COLS

    @classmethod
    def for_scene(
        cls,
        height: int,
        width: int,
        window: int,
        overlap: int,
        band_cols: int = DEFAULT_BAND_COLS,
    ) -> StripPlan:
        """The plan for an H x W scene (any size, including smaller than one window)."""
        if band_cols < 1:
            raise ValueError(f"`band_cols >= 1` must hold, but got (band_cols={band_cols})")
        return cls(
            height=height,
            width=width,
            window=window,
            overlap=overlap,
            row_origins=axis_origins(height, window, overlap),
            col_origins=axis_origins(width, window, overlap),
            band_cols=band_cols,
        )

    @property
    def stride(self) -> int:
        """Distance between neighbouring window origins (pixels)."""
        return self.window - self.overlap

    @property
    def n_strips(self) -> int:
        """Number of row strips."""
        return len(self.row_origins)

    @property
    def n_windows(self) -> int:
        """Number of windows predicted over the whole scene (those where bands meet twice)."""
        return len(self.row_origins) * sum(len(self.block_origins(j)) for j in range(self.n_blocks))

    @property
    def n_blocks(self) -> int:
        """Column bands: tiles per strip."""
        return math.ceil(self.width / self.band_cols)

    @property
    def n_tiles(self) -> int:
        """Tiles over the whole scene: strips x bands."""
        return self.n_strips * self.n_blocks

    def tiles(self) -> list[tuple[int, int]]:
        """Every (strip, band) in prediction order: band by band, each top to bottom."""
        return [(k, j) for j in range(self.n_blocks) for k in range(self.n_strips)]

    def finished_cols(self, j: int) -> tuple[int, int]:
        """Scene columns ``[start, stop)`` of band `j`: what its tiles finish."""
        start = j * self.band_cols
        return start, min(start + self.band_cols, self.width)

    def block_origins(self, j: int) -> np.ndarray:
        """Padded column origins of the windows band `j` needs: all that touch its columns."""
        c0, c1 = self.finished_cols(j)
        o = self.col_origins
        return o[(o < c1) & (o + self.window > c0)]

    def block_span(self, j: int) -> tuple[int, int]:
        """Padded columns ``[x0, x1)`` covered by the windows of band `j`."""
        origins = self.block_origins(j)
        return int(origins[0]), int(origins[-1]) + self.window

    def block_cols(self, j: int) -> np.ndarray:
        """Scene columns read by band `j`, reflected into range: (x1 - x0,) int64."""
        x0, x1 = self.block_span(j)
        return reflect_index(np.arange(x0, x1), self.width)

    @property
    def padded_width(self) -> int:
        """Columns of a strip: from the first window's origin to the last window's end."""
        return int(self.col_origins[-1] - self.col_origins[0]) + self.window

    def strip_rows(self, k: int) -> np.ndarray:
        """Scene rows read by strip `k`, reflected into range: (window,) int64."""
        y = int(self.row_origins[k])
        return reflect_index(np.arange(y, y + self.window), self.height)

    def strip_cols(self) -> np.ndarray:
        """Scene columns of every strip, reflected into range: (padded_width,) int64."""
        x0 = int(self.col_origins[0])
        return reflect_index(np.arange(x0, x0 + self.padded_width), self.width)

    def finished_rows(self, k: int) -> tuple[int, int]:
        """Scene rows ``[start, stop)`` that no strip after `k` touches (ready to write).

        Strip k finishes the rows from its origin up to the next strip's origin; the
        last strip finishes everything to the scene's end. Rows outside the scene
        (the reflection margins) are clipped away, so the range may be empty.
        """
        y = int(self.row_origins[k])
        end = y + self.window if k == self.n_strips - 1 else int(self.row_origins[k + 1])
        return max(y, 0), min(end, self.height)
