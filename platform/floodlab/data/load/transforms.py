"""Patch windows and augmentation applied identically to every spatial array of a sample."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from floodlab.data.load.reads import Window


@dataclass(frozen=True)
class Crop:
    """Where a patch comes from and how it is padded to the patch size.

    Attributes:
        window: (y0, x0, h, w) read from the chip, in pixels.
        pad: (top, bottom, left, right) pixels of nodata around the read window
            (non-zero only when the chip is smaller than the patch).
    """

    window: Window
    pad: tuple[int, int, int, int]


def _axis(size: int, patch: int, rng: np.random.Generator | None) -> tuple[int, int, int, int]:
    """(start, length, pad_before, pad_after) along one axis."""
    if size >= patch:
        start = int(rng.integers(0, size - patch + 1)) if rng is not None else (size - patch) // 2
        return start, patch, 0, 0
    before = (patch - size) // 2  # a small chip sits in the middle of the padded patch
    return 0, size, before, patch - size - before


def crop_for(chip_hw: tuple[int, int], patch: int, rng: np.random.Generator | None = None) -> Crop:
    """A random (rng given: training) or centred (rng None) patch of a chip.

    Args:
        chip_hw: (H, W) of the chip in pixels.
        patch: side of the square patch.
        rng: random generator for training crops; None for the centred crop.
    """
    y0, h, top, bottom = _axis(chip_hw[0], patch, rng)
    x0, w, left, right = _axis(chip_hw[1], patch, rng)
    return Crop((y0, x0, h, w), (top, bottom, left, right))


def pad(array: np.ndarray, crop: Crop, fill: float | int | bool) -> np.ndarray:
    """Pad the last two axes of `array` by `crop.pad` with `fill` (no copy if no padding)."""
    top, bottom, left, right = crop.pad
    if not any(crop.pad):
        return array
    widths = [(0, 0)] * (array.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(array, widths, mode="constant", constant_values=fill)


@dataclass(frozen=True)
class Geometric:
    """One draw of the dihedral augmentation: flips then a rotation by k * 90 degrees."""

    flip_h: bool = False
    flip_v: bool = False
    k: int = 0

    @classmethod
    def draw(cls, rng: np.random.Generator, flips: bool, rot90: bool) -> Geometric:
        """A random transform (flips/rotations only where enabled)."""
        flip_h = bool(rng.integers(2)) if flips else False
        flip_v = bool(rng.integers(2)) if flips else False
        k = int(rng.integers(4)) if rot90 else 0
        return cls(flip_h, flip_v, k)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        """Apply to the last two (y, x) axes; returns a contiguous array."""
        if self.flip_h:
            array = array[..., :, ::-1]
        if self.flip_v:
            array = array[..., ::-1, :]
        if self.k:
            array = np.rot90(array, self.k, axes=(-2, -1))
        return np.ascontiguousarray(array)


def augment_spatial(
    arrays: Mapping[str, np.ndarray], rng: np.random.Generator, flips: bool, rot90: bool
) -> dict[str, np.ndarray]:
    """Apply ONE random flip/rotation to every array (image, mask, valid, priors, ...).

    Args:
        arrays: name -> (..., H, W) arrays of one sample (H == W when rot90 is on).
        rng: random generator.
        flips: random horizontal and vertical flips.
        rot90: random rotations by 0/90/180/270 degrees.
    """
    geo = Geometric.draw(rng, flips, rot90)
    return {name: geo(a) for name, a in arrays.items()}


def brightness_contrast(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float,
    contrast: float,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Random contrast (about each band's mean) and brightness shift, in normalised units.

    Args:
        image: (C, H, W) normalised image.
        rng: random generator.
        brightness: max absolute additive shift (0 = off).
        contrast: max relative change; the factor is drawn in [1 - c, 1 + c] (0 = off).
        valid: (H, W) bool of pixels with data; padding/nodata (0 after normalisation)
            stays 0 so the model still sees it as "no data".

    Returns:
        (C, H, W) float32.
    """
    if brightness <= 0 and contrast <= 0:
        return image
    factor = np.float32(rng.uniform(1 - contrast, 1 + contrast)) if contrast > 0 else 1
    shift = np.float32(rng.uniform(-brightness, brightness)) if brightness > 0 else 0
    mean = image.mean(axis=(-2, -1), keepdims=True, dtype=np.float32)
    out = ((image - mean) * factor + mean + shift).astype(np.float32, copy=False)
    if valid is not None:
        out *= valid[None]
    return out
