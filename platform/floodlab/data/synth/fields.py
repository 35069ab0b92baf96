"""Random fields for synthetic scenes: noise, terrain, rivers, blobs, parcels, speckle."""

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
    rng: np.random.Generator,
    sigma0_db: np.ndarray,
    looks: float = GRD_ENL,
    texture: np.ndarray | float | None = None,
) -> np.ndarray:
    """Apply multiplicative speckle (and optionally texture) to backscatter in dB, return dB.

    Pure speckle is Gamma(L, 1/L) intensity. With `texture`, the intensity is also
    multiplied by a Gamma(nu, 1/nu) texture (the K-distribution of heterogeneous clutter:
    cities, forest canopies, crops), whose tail grows heavier as nu falls (nu -> inf is
    pure speckle; nu ~ 1-3 is urban).

    Args:
        rng: generator.
        sigma0_db: noise-free backscatter, dB, any shape.
        looks: equivalent number of looks (speckle is Gamma(L, 1/L), mean 1).
        texture: texture shape nu per pixel (same shape as `sigma0_db`) or one value;
            None or non-finite values mean no texture there.

    Returns:
        float32 speckled backscatter in dB.
    """
    linear = np.power(10.0, sigma0_db / 10.0)
    noisy = linear * rng.gamma(looks, 1.0 / looks, size=sigma0_db.shape)
    if texture is not None:
        nu = np.broadcast_to(np.asarray(texture, dtype=np.float64), sigma0_db.shape)
        textured = np.isfinite(nu)
        shape_nu = nu[textured]
        noisy[textured] *= rng.gamma(shape_nu, 1.0 / shape_nu)
    return (10.0 * np.log10(np.maximum(noisy, 1e-6))).astype(np.float32)


def parcels(
    rng: np.random.Generator, shape: tuple[int, int], cell: float, aspect: float = 1.0
) -> np.ndarray:
    """Field parcels: the (H, W) int32 id of the parcel each pixel belongs to.

    Parcels are laid out like a cadastre: strips of random widths (0.6-1.4 `cell`) across
    the fields' direction, each strip cut into fields of its own length (0.6-1.4 `cell`
    x `aspect`) at its own offset, all in a frame rotated by a random angle. The cost is
    a few array operations per pixel.

    Args:
        rng: generator.
        shape: (H, W) in pixels.
        cell: mean parcel width in pixels.
        aspect: mean parcel length over width (>= 1).

    Returns:
        int32 ids, not contiguous.
    """
    h, w = shape
    theta = rng.uniform(0.0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # u along the fields, v across them; shifted to be non-negative.
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    u -= u.min()
    v -= v.min()
    n_strips = int(v.max() / (0.6 * cell)) + 2
    strip = np.searchsorted(np.cumsum(rng.uniform(0.6, 1.4, n_strips) * cell), v)
    length = (rng.uniform(0.6, 1.4, n_strips + 1) * cell * aspect).astype(np.float32)
    offset = rng.uniform(0.0, 1.0, n_strips + 1).astype(np.float32) * length
    along = ((u + offset[strip]) // length[strip]).astype(np.int64)
    per_strip = int(along.max()) + 1
    return (strip * per_strip + along).astype(np.int32)


def boundaries(ids: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of pixels whose right or lower neighbour has another id."""
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return edge


def per_parcel(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean of `values` over each pixel's parcel, as an (H, W) float32 map."""
    flat = ids.ravel()
    sums = np.bincount(flat, weights=values.ravel().astype(np.float64))
    counts = np.bincount(flat)
    means = sums / np.maximum(counts, 1)
    return means[ids].astype(np.float32)


def lines(rng: np.random.Generator, shape: tuple[int, int], count: int, width: float) -> np.ndarray:
    """Boolean (H, W) mask of `count` straight lines (roads, runways) of `width` pixels."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros(shape, dtype=bool)
    for _ in range(count):
        theta = rng.uniform(0.0, np.pi)
        cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
        d = np.abs(-(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta))
        out |= d < width / 2.0
    return out


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
