"""Sliding-window geometry of a scene: window origins, reflection indices and row strips.

A scene of H x W pixels is covered by square windows of side `window` spaced
`stride = window - overlap` apart. The grid starts `overlap` pixels *before* the scene
(and ends at least `overlap` pixels after it), the missing pixels being filled by
reflecting the scene at its edges (numpy's ``"reflect"`` mode: the edge pixel is not
repeated). Every scene pixel therefore lies in the full-weight interior of some window,
so edge pixels are predicted with as much context as interior ones, and the blending
weights (floodlab.predict.blend) sum to one everywhere inside the scene.

A *strip* is one row of windows: it spans rows ``[y, y + window)`` of the padded scene.
Each strip is cut into *tiles* of `block_windows` neighbouring windows (a column block),
so one unit of work reads, predicts and blends a bounded ``window x tile-width`` piece of
the scene whatever its size. Tiles are predicted in order (strip by strip, left to right,
or in parallel) and blended by the driver, which carries only the overlapping margins
(`overlap` columns to the next tile, `overlap` rows to the next strip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Windows per column block by default: a tile of 16 windows of 256 px with 64 px of
# overlap is 3136 px wide, whatever the scene's width.
DEFAULT_BLOCK_WINDOWS = 16


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
    """Where the windows of a scene go and which scene pixels each strip reads.

    Attributes:
        height: scene rows.
        width: scene columns.
        window: window side (pixels).
        overlap: window overlap (pixels).
        row_origins: (n_strips,) first padded row of each strip.
        col_origins: (n_cols,) first padded column of each window within a strip.
        block_windows: windows per column block (tile); the last block may hold fewer.
    """

    height: int
    width: int
    window: int
    overlap: int
    row_origins: np.ndarray
    col_origins: np.ndarray
    block_windows: int = DEFAULT_BLOCK_WINDOWS

    @classmethod
    def for_scene(
        cls,
        height: int,
        width: int,
        window: int,
        overlap: int,
        block_windows: int = DEFAULT_BLOCK_WINDOWS,
    ) -> StripPlan:
        """The plan for an H x W scene (any size, including smaller than one window).

        `block_windows` (>= 2, so that every tile finishes some columns) sets the tile width.
        """
        if block_windows < 2:
            raise ValueError(
                f"`block_windows >= 2` must hold, but got (block_windows={block_windows})"
            )
        return cls(
            height=height,
            width=width,
            window=window,
            overlap=overlap,
            row_origins=axis_origins(height, window, overlap),
            col_origins=axis_origins(width, window, overlap),
            block_windows=block_windows,
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
        """Number of windows over the whole scene."""
        return len(self.row_origins) * len(self.col_origins)

    @property
    def n_blocks(self) -> int:
        """Column blocks (tiles) per strip."""
        return math.ceil(len(self.col_origins) / self.block_windows)

    @property
    def n_tiles(self) -> int:
        """Tiles over the whole scene: strips x column blocks."""
        return self.n_strips * self.n_blocks

    def tiles(self) -> list[tuple[int, int]]:
        """Every (strip, block) in prediction order: strip by strip, left to right."""
        return [(k, j) for k in range(self.n_strips) for j in range(self.n_blocks)]

    def block_origins(self, j: int) -> np.ndarray:
        """Padded column origins of the windows of column block `j`."""
        return self.col_origins[j * self.block_windows : (j + 1) * self.block_windows]

    def block_span(self, j: int) -> tuple[int, int]:
        """Padded columns ``[x0, x1)`` covered by the windows of column block `j`."""
        origins = self.block_origins(j)
        return int(origins[0]), int(origins[-1]) + self.window

    def block_cols(self, j: int) -> np.ndarray:
        """Scene columns read by column block `j`, reflected into range: (x1 - x0,) int64."""
        x0, x1 = self.block_span(j)
        return reflect_index(np.arange(x0, x1), self.width)

    def finished_cols(self, j: int) -> tuple[int, int]:
        """Scene columns ``[start, stop)`` of a strip that no block after `j` touches.

        The column analogue of `finished_rows`: block j finishes the columns from its first
        window's origin up to the next block's, the last block everything to the scene's
        end; the reflection margins are clipped away.
        """
        x0, x1 = self.block_span(j)
        end = x1 if j == self.n_blocks - 1 else int(self.block_origins(j + 1)[0])
        return max(x0, 0), min(end, self.width)

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
