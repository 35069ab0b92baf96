"""Sentinel-1 backscatter of a synthetic scene: surface means, texture, speckle, noise, outliers.

The constants are calibrated on real *unlabelled* Sentinel-1 GRD backscatter (the
class-independent percentiles of the dB values, see `benchmarks/synth_calibration.py`),
never on a labelled chip that models are scored on. What makes the distribution realistic:

- per-surface means (VV, VH) in dB from the Sentinel-1 literature, with crop-type and
  moisture offsets per field parcel (+-2 dB) and a smooth within-class variation;
- the thermal noise floor (NESZ) added in linear power, so calm water sits at the floor
  rather than at an arbitrarily low value;
- heavy tails: K-distributed clutter (Gamma texture times Gamma speckle) whose shape
  parameter falls from crops to forest to cities, and bright point targets (double bounce
  on buildings, pylons, vehicles; +5 to +20 dB) that are dense in cities and rare elsewhere;
- dark non-water surfaces that a threshold takes for water: smooth tarmac (roads, runways)
  and sand, bare smooth fields, radar shadow on steep back-slopes, wet snow.
"""

from __future__ import annotations

import numpy as np

from floodlab.data.synth import fields as F
from floodlab.data.synth.surface import Surface

# Mean backscatter (VV, VH) in dB per surface before the noise floor; radar shadow
# overrides with SHADOW_DB. Calm water lies below the noise floor (NESZ_DB).
SAR_DB: dict[Surface, tuple[float, float]] = {
    Surface.OPEN_WATER: (-26.0, -33.0),
    Surface.FLOODED_VEG: (-7.5, -18.0),  # double bounce: bright VV, VH stays low
    Surface.FOREST: (-8.0, -14.0),
    Surface.CROP: (-10.5, -17.5),
    Surface.URBAN: (-5.0, -12.0),
    Surface.DARK_LAND: (-19.0, -27.0),
    Surface.SNOW: (-17.0, -24.0),
}
SHADOW_DB = (-24.0, -31.0)
# Noise-equivalent sigma zero of Sentinel-1 IW (VV, VH), dB: the floor of dark surfaces.
NESZ_DB = (-24.0, -29.5)
# Shape nu of the Gamma texture per surface (K-distributed clutter); None: speckle only.
TEXTURE_NU: dict[Surface, float | None] = {
    Surface.OPEN_WATER: None,
    Surface.FLOODED_VEG: 6.0,
    Surface.FOREST: 10.0,
    Surface.CROP: 16.0,
    Surface.URBAN: 1.5,
    Surface.DARK_LAND: None,
    Surface.SNOW: 20.0,
}
# Bright point targets per pixel (cities; everywhere else) and their VV backscatter, dB.
POINT_DENSITY = {"urban": 0.06, "rural": 3e-4}
POINT_DB = (-2.0, 18.0)
# Per-parcel backscatter offsets (crop type, soil moisture), dB std (VV; VH follows).
PARCEL_DB_STD = 1.8


def backscatter(
    rng: np.random.Generator,
    surface: np.ndarray,
    shadow: np.ndarray,
    water: np.ndarray,
    parcel_ids: np.ndarray,
    n: int,
) -> np.ndarray:
    """(2, H, W) speckled VV, VH backscatter in dB.

    Args:
        rng: generator.
        surface: (H, W) uint8 `Surface` codes.
        shadow: (H, W) bool radar shadow.
        water: (H, W) bool open water and flooded vegetation (wind roughening applies).
        parcel_ids: (H, W) field-parcel ids (per-parcel offsets).
        n: side in pixels.
    """
    k = n / 128.0
    mean = np.zeros((2, n, n), dtype=np.float32)
    nu = np.full((n, n), np.nan, dtype=np.float32)
    for s, (vv, vh) in SAR_DB.items():
        m = surface == s
        mean[0][m], mean[1][m] = vv, vh
        if TEXTURE_NU[s] is not None:
            nu[m] = TEXTURE_NU[s]
    mean[0][shadow], mean[1][shadow] = SHADOW_DB
    # Crop type and moisture per parcel: each field has its own level (VH follows VV).
    table = rng.normal(0.0, PARCEL_DB_STD, size=(2, int(parcel_ids.max()) + 1))
    table[1] = 0.7 * table[0] + 0.7 * table[1]
    land = ~water & (surface != Surface.URBAN) & ~shadow
    mean += np.where(land, table[:, parcel_ids], 0.0).astype(np.float32)
    # Within-class variability (moisture, biomass) of ~1 dB, shared by both polarisations.
    mean += 1.0 * F.smooth_noise(rng, (n, n), 6 * k)[None]
    # Wind-roughened water: brighter in patches, up to +8 dB in VV.
    if rng.random() < 0.3:
        wind = np.clip(F.smooth_noise(rng, (n, n), 15 * k), 0, None) * rng.uniform(2.0, 5.0)
        mean[0] += np.where(water, wind, 0.0)
        mean[1] += np.where(water, 0.5 * wind, 0.0)
    # Incidence-angle trend across range: about 2 dB over the chip.
    mean += np.linspace(1.0, -1.0, n, dtype=np.float32)[None, None, :] * rng.uniform(0.5, 1.0)
    # Mixed pixels at class boundaries: blur in linear power, then the noise floor.
    linear = F.blur(np.power(10.0, mean / 10.0), 0.7)
    linear = np.maximum(linear, 0.0) + np.power(10.0, np.array(NESZ_DB) / 10.0)[:, None, None]
    mean_db = 10.0 * np.log10(linear)
    out = F.speckle_db(rng, mean_db, texture=nu[None])
    # Point targets replace the pixel: double bounce is deterministic, not speckled.
    urban = surface == Surface.URBAN
    density = np.where(urban, POINT_DENSITY["urban"], POINT_DENSITY["rural"])
    points = (rng.random((n, n)) < density) & ~water
    if points.any():
        point_db = rng.uniform(*POINT_DB, size=int(points.sum())).astype(np.float32)
        out[0][points] = np.maximum(out[0][points], point_db)
        cross_drop = rng.uniform(5.0, 10.0, size=point_db.shape).astype(np.float32)
        out[1][points] = np.maximum(out[1][points], point_db - cross_drop)
    return out
