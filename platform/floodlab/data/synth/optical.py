"""Sentinel-2 TOA reflectance of a synthetic scene, with clouds that a threshold cannot find.

Surfaces have L1C spectra (x10000) whose NDVI/NDWI agree with the land cover; terrain
shading, per-parcel brightness and a scene-wide illumination factor vary them. Clouds
are what makes cloud masking hard in RGB, not a white layer on dark ground:

- thick clouds with fractal edges, darker bases and their own brightness per scene
  (from grey to white), casting shadows (labelled shadow, i.e. not cloud);
- thin, semi-transparent cloud (cirrus sheets and the fringes of thick clouds) that only
  lightens and flattens the ground beneath, often less than bright ground differs from
  dark ground;
- bright surfaces that are not cloud: snow (as bright as cloud), sand and bright bare
  soil, roofs and greenhouses (up to ~1.8x their usual reflectance).
"""

from __future__ import annotations

import numpy as np

from floodlab.data.synth import fields as F
from floodlab.data.synth.surface import Surface

# Sentinel-2 L1C TOA reflectance x10000, bands B1..B12 (S2_BANDS order).
SPECTRA: dict[Surface, tuple[int, ...]] = {
    Surface.OPEN_WATER: (1350, 1100, 1050, 950, 1000, 800, 800, 700, 650, 180, 10, 400, 250),
    Surface.FLOODED_VEG: (1300, 1000, 1100, 900, 1300, 1900, 2200, 2100, 2300, 350, 12, 1200, 700),
    Surface.FOREST: (1250, 900, 800, 600, 1100, 2400, 2900, 3100, 3300, 550, 15, 1700, 900),
    Surface.CROP: (1450, 1250, 1350, 1500, 1800, 2200, 2400, 2450, 2600, 450, 12, 2600, 1800),
    Surface.URBAN: (1600, 1500, 1500, 1550, 1650, 1750, 1850, 1900, 1950, 400, 15, 2100, 1900),
    Surface.DARK_LAND: (1900, 2000, 2300, 2700, 2900, 3000, 3100, 3200, 3250, 600, 20, 3800, 3200),
    # Snow: bright and flat in the visible and NIR, dark in SWIR (B11, B12).
    Surface.SNOW: (7800, 7600, 7500, 7300, 7200, 7000, 6800, 6600, 6300, 2200, 120, 900, 700),
}
CLOUD_SPECTRUM = (5600, 5400, 5300, 5300, 5400, 5500, 5500, 5600, 5600, 1500, 300, 4200, 3000)
# Surfaces whose brightness varies most between parcels (sand and soil, roof materials).
BRIGHT_VARIABLE = (Surface.DARK_LAND, Surface.URBAN)

# Cloud mask classes (CloudSEN12 coding).
CLEAR, THICK, THIN, CLOUD_SHADOW = 0, 1, 2, 3


def surface_reflectance(
    rng: np.random.Generator,
    surface: np.ndarray,
    parcel_ids: np.ndarray,
    shade: np.ndarray,
    n: int,
) -> np.ndarray:
    """(13, H, W) float32 cloud-free TOA reflectance x10000.

    Args:
        rng: generator.
        surface: (H, W) uint8 `Surface` codes.
        parcel_ids: (H, W) field-parcel ids (per-parcel brightness).
        shade: (H, W) terrain illumination factor (1 on flat ground).
        n: side in pixels.
    """
    k = n / 128.0
    table = np.array([SPECTRA[Surface(s)] for s in range(len(Surface))], dtype=np.float32)
    # Mixed pixels: blur the per-surface fractions (cheaper than 13 bands), then mix the
    # spectra linearly.
    onehot = surface[None] == np.arange(len(Surface), dtype=np.uint8)[:, None, None]
    frac = F.blur(onehot.astype(np.float32), 0.5)  # (S, H, W)
    refl = np.einsum("sk,shw->khw", table, frac)  # (13, H, W)
    # One brightness factor per pixel: sand, soil and roofs each parcel its own (up to that
    # of cloud); terrain shading; sun elevation and atmosphere; illumination, turbidity.
    gain = rng.uniform(0.85, 1.8, size=int(parcel_ids.max()) + 1).astype(np.float32)
    variable = np.isin(surface, BRIGHT_VARIABLE)
    factor = np.where(variable, gain[parcel_ids], np.float32(1.0)) * shade
    factor *= np.float32(rng.uniform(0.85, 1.15))
    factor *= 1.0 + 0.08 * F.smooth_noise(rng, (n, n), 8 * k)
    refl *= factor[None]
    refl *= 1.0 + 0.015 * rng.standard_normal(refl.shape, dtype=np.float32)  # sensor noise
    return refl.astype(np.float32)


def add_clouds(
    rng: np.random.Generator, refl: np.ndarray, cloud_prob: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Clouds over `refl`: the cloudy reflectance and the (H, W) uint8 cloud classes.

    With probability `cloud_prob` the scene gets thick clouds (fractal edges, darker
    bases, a brightness of their own), their thin fringes and shadows, and possibly a
    thin cirrus sheet of its own.
    """
    k = n / 128.0
    cloud = np.zeros((n, n), dtype=np.uint8)
    if rng.random() >= cloud_prob:
        return refl, cloud
    c = np.asarray(CLOUD_SPECTRUM, dtype=np.float32)[:, None, None]  # (13, 1, 1)
    # Thick cloud: a fractal field above a cover quantile; optical depth grows inwards.
    field = F.fractal_noise(rng, (n, n), 14 * k)
    cover = rng.uniform(0.0, 0.45)
    top = float(np.quantile(field, 1.0 - cover)) if cover > 0 else np.inf
    fringe_lo = float(np.quantile(field, 1.0 - min(1.0, 1.6 * cover))) if cover > 0 else np.inf
    thick = field > top
    # Opacity: a ramp from the fringe to well inside the cloud (fully opaque there).
    depth = np.clip((field - fringe_lo) / max(top - fringe_lo, 1e-6), 0.0, None)
    alpha = np.clip(0.12 + 0.5 * depth, 0.0, 1.0) * (field > fringe_lo)
    # A thin cirrus sheet of its own in about half the cloudy scenes.
    if rng.random() < 0.5:
        sheet = F.smooth_noise(rng, (n, n), 20 * k)
        sheet_cover = rng.uniform(0.1, 0.6)
        cut = float(np.quantile(sheet, 1.0 - sheet_cover))
        cirrus = np.clip((sheet - cut) * rng.uniform(0.15, 0.4), 0.0, 0.45)
        alpha = np.maximum(alpha, np.where(sheet > cut, 0.1 + cirrus, 0.0))
    thin = (alpha >= 0.1) & ~thick
    # Cloud brightness: its own per scene (grey to white), darker bases towards the edges,
    # and fractal texture.
    tone = rng.uniform(0.6, 1.3) * (0.8 + 0.2 * np.clip(depth - 1.0, 0.0, 1.0))
    texture = 1.0 + 0.1 * F.smooth_noise(rng, (n, n), 2 * k)
    cloud_refl = c * (tone * texture)[None]
    a = np.where(thick, 1.0, np.where(thin, alpha, 0.0))[None].astype(np.float32)
    out = (1.0 - a) * refl + a * cloud_refl
    # Shadows of thick clouds and dense fringes, offset by sun and cloud height.
    dy, dx = (rng.integers(3, 12, size=2) * k).astype(int) * rng.choice([-1, 1], size=2)
    caster = thick | (thin & (alpha > 0.3))
    cshadow = F.shift(caster, int(dy), int(dx)) & ~thick & ~thin
    out = np.where(cshadow[None], rng.uniform(0.35, 0.65) * out, out)
    cloud[cshadow], cloud[thin], cloud[thick] = CLOUD_SHADOW, THIN, THICK
    return out.astype(np.float32), cloud
