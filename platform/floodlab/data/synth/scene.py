"""One physically plausible synthetic scene: terrain, water, land cover, SAR, optical, clouds.

The model is deliberately simple but keeps what makes flood mapping hard:

- Water is a meandering river channel, small lakes, and a flood grown from the river into
  the lowlands (height above the river below a random flood level).
- SAR backscatter (dB) per surface, from Sentinel-1 literature and calibrated on the real
  Sen1Floods11 chip Spain_7370579 (hand-label class means there: water VV -17.0 / VH
  -25.2 dB, dry VV -9.3 / VH -16.9 dB, both with mixed and flooded-vegetation pixels):
  open water VV -20 / VH -27, land (forest/crops) about VV -10 / VH -17, multiplied by
  Gamma speckle (ENL 4.4). Result (40 chips of 128 px, seed 0): water VV -16.8 / VH
  -25.1 dB (std 5.6 / 4.0; real 5.5 / 6.0), dry VV -10.9 / VH -18.1 dB (std 3.5 / 3.8;
  real 4.0 / 3.7), i.e. within 0.3 dB of the real water means and 1.6 dB of the dry
  ones; `tests/data/test_synth.py` keeps every class mean within 3 dB.
- Confounders that defeat a global Otsu threshold on VV: flooded vegetation (water,
  but bright VV through double bounce and a large VV-VH difference), smooth dark land
  (sand, tarmac: dark like water in SAR, bright in optical), radar shadow on steep
  back-slopes, wind-roughened water, an incidence-angle trend and speckle.
- Sentinel-2 TOA reflectance x10000 per surface with NDVI/NDWI that agree with the land
  cover (water: NDWI > 0, low NIR; vegetation: NDVI > 0.5), thick and thin clouds with
  their shadows, and no-data wedges at swath borders.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from floodlab.data.synth import fields as F


class Surface(IntEnum):
    """Surface classes of a synthetic scene."""

    OPEN_WATER = 0
    FLOODED_VEG = 1
    FOREST = 2
    CROP = 3
    URBAN = 4
    DARK_LAND = 5  # sand, tarmac: specular like water in SAR, bright in optical


# Mean backscatter (VV, VH) in dB per surface; radar shadow overrides with SHADOW_DB.
SAR_DB: dict[Surface, tuple[float, float]] = {
    Surface.OPEN_WATER: (-20.0, -27.0),
    Surface.FLOODED_VEG: (-8.0, -19.5),  # double bounce: bright VV, VH stays low
    Surface.FOREST: (-8.5, -15.0),
    Surface.CROP: (-11.0, -18.5),
    Surface.URBAN: (-4.0, -12.0),
    Surface.DARK_LAND: (-18.5, -29.0),
}
SHADOW_DB = (-22.0, -29.0)

# Sentinel-2 L1C TOA reflectance x10000, bands B1..B12 (S2_BANDS order).
SPECTRA: dict[Surface, tuple[int, ...]] = {
    Surface.OPEN_WATER: (1350, 1100, 1050, 950, 1000, 800, 800, 700, 650, 180, 10, 400, 250),
    Surface.FLOODED_VEG: (1300, 1000, 1100, 900, 1300, 1900, 2200, 2100, 2300, 350, 12, 1200, 700),
    Surface.FOREST: (1250, 900, 800, 600, 1100, 2400, 2900, 3100, 3300, 550, 15, 1700, 900),
    Surface.CROP: (1450, 1250, 1350, 1500, 1800, 2200, 2400, 2450, 2600, 450, 12, 2600, 1800),
    Surface.URBAN: (1600, 1500, 1500, 1550, 1650, 1750, 1850, 1900, 1950, 400, 15, 2100, 1900),
    Surface.DARK_LAND: (1900, 2000, 2300, 2700, 2900, 3000, 3100, 3200, 3250, 600, 20, 3800, 3200),
}
CLOUD_SPECTRUM = (5600, 5400, 5300, 5300, 5400, 5500, 5500, 5600, 5600, 1500, 300, 4200, 3000)

# SEN12MS land-cover codes per surface: (IGBP, LCCS land cover, LCCS land use, LCCS
# surface hydrology). IGBP 17 is water; 11 permanent wetlands; LCCS code 3 is water.
LC_CODES: dict[Surface, tuple[int, int, int, int]] = {
    Surface.OPEN_WATER: (17, 3, 3, 3),
    Surface.FLOODED_VEG: (11, 31, 30, 50),
    Surface.FOREST: (4, 14, 10, 10),
    Surface.CROP: (12, 31, 36, 30),
    Surface.URBAN: (13, 1, 9, 1),
    Surface.DARK_LAND: (16, 1, 1, 1),
}

# Cloud mask classes (CloudSEN12 coding).
CLEAR, THICK, THIN, CLOUD_SHADOW = 0, 1, 2, 3


@dataclass
class Scene:
    """Every layer of one synthetic chip (all (H, W) unless noted)."""

    surface: np.ndarray  # uint8 Surface codes
    water: np.ndarray  # bool: open water or flooded vegetation
    sar_db: np.ndarray  # (2, H, W) float32 VV, VH in dB, NaN at nodata
    s2: np.ndarray  # (13, H, W) int16 TOA reflectance x10000, 0 at nodata
    cloud: np.ndarray  # uint8 CLEAR/THICK/THIN/CLOUD_SHADOW
    nodata: np.ndarray  # bool: outside the swath
    label: np.ndarray  # int8: 1 water, 0 dry, -1 invalid (nodata or under thick cloud)
    dtm: np.ndarray  # float32 elevation, m
    slope: np.ndarray  # float32 terrain slope, degrees
    lc: np.ndarray  # (4, H, W) uint8 SEN12MS land-cover codes
    flood: np.ndarray  # bool: water of the event only (flooded land, not permanent water)
    sar_db_pre: np.ndarray | None = None  # (2, H, W) pre-event VV, VH (with `pre_event`)


def make_scene(
    rng: np.random.Generator,
    n: int,
    *,
    flood: bool = True,
    cloud_prob: float = 0.35,
    nodata_prob: float = 0.2,
    pixel_m: float = 10.0,
    pre_event: bool = False,
) -> Scene:
    """Generate one n x n scene.

    Args:
        rng: generator (the scene is a pure function of its state).
        n: side in pixels.
        flood: grow a flood from the river (False: permanent water only, e.g. SEN12MS).
        cloud_prob: probability that the optical image has clouds.
        nodata_prob: probability of a no-data wedge at the swath border.
        pixel_m: pixel size in metres (terrain slopes and valley widths use it).
        pre_event: also simulate the SAR of the same place before the flood (the flooded
            land with its own cover; permanent water as it is). Drawn after everything
            else, so the other layers do not change with it.
    """
    shape = (n, n)
    k = n / 128.0  # feature sizes scale with the chip

    # --- terrain: height above the river (m) in a valley, optional hills ---
    has_river = rng.random() < (0.9 if flood else 0.6)
    dist = F.river_distance(rng, n) if has_river else np.full(shape, float(n), np.float32)
    hand = 0.02 * dist * pixel_m + rng.uniform(2.0, 12.0) * (
        F.fractal_noise(rng, shape, 30 * k) + 2.0
    )
    hilly = rng.random() < 0.25
    if hilly:
        hand = hand + rng.uniform(40.0, 120.0) * (F.smooth_noise(rng, shape, 10 * k) + 2.0)
    hand = hand - hand.min()
    dtm = (rng.uniform(5.0, 400.0) + hand).astype(np.float32)
    gy, gx = np.gradient(dtm, pixel_m)  # m per m
    slope = np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)

    # --- water: channel, lakes in lowlands, flood from the river ---
    channel = dist < max(1.5, rng.uniform(1.5, 5.0) * k)
    lowland = hand < np.quantile(hand, 0.5)
    lakes = F.blobs(rng, shape, 10 * k, rng.uniform(0.0, 0.04)) & lowland
    flooded = np.zeros(shape, dtype=bool)
    if flood and rng.random() < 0.85:
        flooded = hand <= np.quantile(hand, rng.uniform(0.08, 0.5))
    water = channel | lakes | flooded

    # --- land cover ---
    veg = F.smooth_noise(rng, shape, 10 * k)
    surface = np.where(veg > 0.3, Surface.FOREST, Surface.CROP).astype(np.uint8)
    urban = F.blobs(rng, shape, 6 * k, rng.uniform(0.0, 0.06)) & ~water
    dark_frac = rng.uniform(0.02, 0.1) if rng.random() < 0.7 else 0.0
    dark = F.blobs(rng, shape, 7 * k, dark_frac) & ~water & ~urban
    surface[urban] = Surface.URBAN
    surface[dark] = Surface.DARK_LAND
    dry_surface = surface.copy()  # the land before the event
    surface[water] = Surface.OPEN_WATER
    surface[flooded & ~channel & ~lakes & (veg > 0.6)] = Surface.FLOODED_VEG
    # Radar shadow on steep back-slopes (the sensor looks east here: slopes facing west).
    shadow = np.zeros(shape, dtype=bool)
    if hilly:
        back = -gx
        shadow = (back > max(float(np.quantile(back, 0.93)), 0.2)) & ~water

    sar_db = _sar(rng, surface, shadow, water, n)
    s2, cloud = _optical(rng, surface, cloud_prob, n)

    nodata = np.zeros(shape, dtype=bool)
    if rng.random() < nodata_prob:
        nodata = F.edge_nodata(rng, n, rng.uniform(0.05, 0.3))
    sar_db[:, nodata] = np.nan
    s2[:, nodata] = 0
    label = water.astype(np.int8)
    label[(cloud == THICK) | nodata] = -1
    codes = np.array([LC_CODES[Surface(s)] for s in range(len(Surface))], dtype=np.uint8)
    lc = np.moveaxis(codes[surface], -1, 0)  # (4, H, W)
    flood_only = flooded & ~channel & ~lakes
    sar_db_pre = None
    if pre_event:
        before = np.where(flood_only, dry_surface, surface).astype(np.uint8)
        sar_db_pre = _sar(rng, before, shadow, water & ~flood_only, n)
        sar_db_pre[:, nodata] = np.nan
    return Scene(
        surface=surface,
        water=water,
        sar_db=sar_db,
        s2=s2,
        cloud=cloud,
        nodata=nodata,
        label=label,
        dtm=dtm,
        slope=slope,
        lc=np.ascontiguousarray(lc),
        flood=flood_only,
        sar_db_pre=sar_db_pre,
    )


def _sar(
    rng: np.random.Generator, surface: np.ndarray, shadow: np.ndarray, water: np.ndarray, n: int
) -> np.ndarray:
    """(2, H, W) speckled VV, VH backscatter in dB."""
    k = n / 128.0
    mean = np.zeros((2, n, n), dtype=np.float32)
    for s, (vv, vh) in SAR_DB.items():
        m = surface == s
        mean[0][m], mean[1][m] = vv, vh
    mean[0][shadow], mean[1][shadow] = SHADOW_DB
    # Within-class variability (moisture, biomass) of ~1 dB, shared by both polarisations.
    mean += 1.0 * F.smooth_noise(rng, (n, n), 6 * k)[None]
    # Wind-roughened water: brighter in patches, up to +6 dB in VV.
    if rng.random() < 0.3:
        wind = np.clip(F.smooth_noise(rng, (n, n), 15 * k), 0, None) * rng.uniform(2.0, 4.0)
        mean[0] += np.where(water, wind, 0.0)
        mean[1] += np.where(water, 0.5 * wind, 0.0)
    # Incidence-angle trend across range: about 2 dB over the chip.
    mean += np.linspace(1.0, -1.0, n, dtype=np.float32)[None, None, :] * rng.uniform(0.5, 1.0)
    # Mixed pixels at class boundaries: blur in linear power before speckle.
    linear = F.blur(np.power(10.0, mean / 10.0), 0.7)
    mean_db = 10.0 * np.log10(np.maximum(linear, 1e-6))
    return F.speckle_db(rng, mean_db)


def _optical(
    rng: np.random.Generator, surface: np.ndarray, cloud_prob: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """(13, H, W) int16 TOA reflectance x10000 and the (H, W) uint8 cloud classes."""
    k = n / 128.0
    table = np.array([SPECTRA[Surface(s)] for s in range(len(Surface))], dtype=np.float32)
    # Mixed pixels: blur the per-surface fractions (6 maps, cheaper than 13 bands), then mix
    # the spectra linearly.
    onehot = surface[None] == np.arange(len(Surface), dtype=np.uint8)[:, None, None]
    frac = F.blur(onehot.astype(np.float32), 0.5)  # (6, H, W)
    refl = np.einsum("ck,chw->khw", table, frac)  # (13, H, W)
    refl *= 1.0 + 0.08 * F.smooth_noise(rng, (n, n), 8 * k)[None]  # illumination, turbidity
    refl *= 1.0 + 0.015 * rng.standard_normal(refl.shape, dtype=np.float32)  # sensor noise
    cloud = np.zeros((n, n), dtype=np.uint8)
    if rng.random() < cloud_prob:
        field = F.smooth_noise(rng, (n, n), 12 * k)
        cover = rng.uniform(0.05, 0.4)
        thick = field > np.quantile(field, 1.0 - cover)
        thin = (field > np.quantile(field, 1.0 - 1.6 * cover)) & ~thick
        dy, dx = (rng.integers(3, 10, size=2) * k).astype(int) * rng.choice([-1, 1], size=2)
        cshadow = F.shift(thick | thin, int(dy), int(dx)) & ~thick & ~thin
        c = np.asarray(CLOUD_SPECTRUM, dtype=np.float32)[:, None, None]  # (13, 1, 1)
        # Thin cloud: the ground seen through a partly transparent layer.
        alpha = np.clip(0.35 + 0.15 * F.smooth_noise(rng, (n, n), 4 * k), 0.1, 0.7)[None]
        refl = np.where(thin[None], (1 - alpha) * refl + alpha * c, refl)
        # Thick cloud: opaque, the cloud spectrum with 5 % brightness texture.
        texture = 1.0 + 0.05 * rng.standard_normal((1, n, n), dtype=np.float32)
        refl = np.where(thick[None], c * texture, refl)
        refl = np.where(cshadow[None], 0.45 * refl, refl)
        cloud[cshadow], cloud[thin], cloud[thick] = CLOUD_SHADOW, THIN, THICK
    # Valid reflectances are >= 1 so that 0 stays reserved for nodata.
    return np.clip(np.rint(refl), 1, 20000).astype(np.int16), cloud
