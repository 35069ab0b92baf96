"""Random smooth fields for synthetic scenes: noise, terrain, rivers, blobs, speckle."""

from __future__ import annotations

import numpy as np

# Equivalent number of looks of Sentinel-1 IW GRD high-resolution products (ESA product
# specification: ENL ~4.4); intensity speckle is Gamma(L, 1/L), i.e. ~2.2 dB std.
GRD_ENL = 4.4


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Gaussian-filtered white noise, zero mean and unit std.

    Args:
        rng: generator.
        shape: (H, W) in pixels.
        scale: Gaussian sigma in pixels (feature size; larger is smoother).

    Returns:
        float32 (H, W) field. Filtering is done in the Fourier domain (periodic edges).
    """
    h, w = shape
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2.0 * (np.pi * scale) ** 2 * (fx**2 + fy**2))
    field = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=shape)
    field -= field.mean()
    std = field.std()
    return (field / std if std > 0 else field).astype(np.float32)


def fractal_noise(
    rng: np.random.Generator, shape: tuple[int, int], scale: float, octaves: int = 3
) -> np.ndarray:
    """Sum of smooth fields at halving scales with halving amplitude, unit std."""
    total = np.zeros(shape, dtype=np.float32)
    amp, s = 1.0, scale
    for _ in range(octaves):
        total += amp * smooth_noise(rng, shape, max(s, 0.5))
        amp, s = amp / 2.0, s / 2.0
    return (total / total.std()).astype(np.float32)


def river_distance(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distance in pixels to a meandering river centre line crossing an n x n chip.

    The line runs at a random angle through a random point near the centre, with a
    sinusoidal meander plus a smooth random wander.
    """
    theta = rng.uniform(0.0, np.pi)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    cy, cx = rng.uniform(0.3, 0.7, size=2) * n
    # u runs along the river, v across it.
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    wavelength = rng.uniform(0.5, 1.2) * n
    amplitude = rng.uniform(0.03, 0.12) * n
    phase = rng.uniform(0.0, 2 * np.pi)
    wander = np.interp(
        u.ravel(),
        np.linspace(-n, n, 16),
        np.cumsum(rng.normal(0.0, 0.02 * n, size=16)),
    ).reshape(n, n)
    centre = amplitude * np.sin(2 * np.pi * u / wavelength + phase) + wander
    return np.abs(v - centre).astype(np.float32)


def blobs(
    rng: np.random.Generator, shape: tuple[int, int], scale: float, frac: float
) -> np.ndarray:
    """Boolean mask of smooth random blobs covering about `frac` of the area."""
    if frac <= 0:
        return np.zeros(shape, dtype=bool)
    field = smooth_noise(rng, shape, scale)
    return field > np.quantile(field, 1.0 - frac)


def speckle_db(
    rng: np.random.Generator, sigma0_db: np.ndarray, looks: float = GRD_ENL
) -> np.ndarray:
    """Apply multiplicative Gamma speckle to backscatter given in dB, return dB.

    Args:
        rng: generator.
        sigma0_db: noise-free backscatter, dB, any shape.
        looks: equivalent number of looks (speckle is Gamma(L, 1/L), mean 1).

    Returns:
        float32 speckled backscatter in dB.
    """
    linear = np.power(10.0, sigma0_db / 10.0)
    noisy = linear * rng.gamma(looks, 1.0 / looks, size=sigma0_db.shape)
    return (10.0 * np.log10(np.maximum(noisy, 1e-6))).astype(np.float32)


def edge_nodata(rng: np.random.Generator, n: int, frac: float) -> np.ndarray:
    """Boolean mask of a straight-edged no-data wedge (a swath or scene border) of ~frac area."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    theta = rng.uniform(0.0, 2 * np.pi)
    d = xx * np.cos(theta) + yy * np.sin(theta)
    return d > np.quantile(d, 1.0 - frac)


def shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift a mask by (dy, dx) pixels, filling with False (no wrap-around)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a (..., H, W) image with sigma in pixels (Fourier domain, periodic)."""
    h, w = image.shape[-2:]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))
    return np.fft.irfft2(np.fft.rfft2(image) * kernel, s=(h, w)).astype(np.float32)
