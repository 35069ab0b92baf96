"""One physically plausible synthetic scene: terrain, parcels, water, land cover, SAR, optical.

The model is deliberately simple but keeps what makes flood mapping hard:

- Terrain is a valley around a meandering river (height above the river, HAND) with
  optional hills, divided into field parcels (straight-sided, elongated, 120-300 m).
- Water is the river channel, small lakes, and a *fragmented* flood: each parcel has its
  own effective level (field height, drainage, crop), so the flood fills parcels and
  depressions along the floodplain one by one, with dry holes where the micro-relief is
  high, isolated ponds where it is low, and raised field boundaries (tracks, hedges,
  dykes) left dry across flooded land -- not a smooth blob grown from the river.
- Confounders that defeat a global threshold on VV: flooded vegetation (water, but bright
  VV through double bounce), smooth dark land (tarmac roads and runways, sand, bare
  smooth fields: dark like water in SAR), radar shadow on steep back-slopes, wet snow,
  wind-roughened water, bright point targets, an incidence-angle trend, K-distributed
  clutter and speckle (`floodlab.data.synth.sar`, calibrated on real unlabelled
  Sentinel-1 scenes: `benchmarks/synth_calibration.py`).
- Sentinel-2 TOA reflectance with NDVI/NDWI that agree with the land cover, terrain
  shading, bright non-cloud surfaces (snow, sand, roofs), thick clouds with fractal edges,
  thin cloud and cirrus, and cloud shadows (`floodlab.data.synth.optical`).
- Labels are valid almost everywhere, as in hand-labelled flood data (Sen1Floods11: a few
  hundredths of a percent invalid): a rare no-data sliver at a swath border and scattered
  unlabelled pixels, a few tenths of a percent over many chips. The flood label stays
  valid under clouds: SAR sees through them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floodlab.data.synth import fields as F
from floodlab.data.synth.optical import (
    CLEAR,
    CLOUD_SHADOW,
    THICK,
    THIN,
    add_clouds,
    surface_reflectance,
)
from floodlab.data.synth.sar import backscatter
from floodlab.data.synth.surface import LC_CODES, Surface

__all__ = ["CLEAR", "CLOUD_SHADOW", "THICK", "THIN", "Scene", "Surface", "make_scene"]

# Field parcels are this wide, m (the length is 1-2.5 times more).
PARCEL_M = (120.0, 300.0)
# Share of unlabelled pixels scattered over a chip (at most), and the chance and area of
# a no-data sliver at a swath border.
LABEL_GAPS = 4e-4
SLIVER_AREA = (0.01, 0.08)


@dataclass
class Scene:
    """Every layer of one synthetic chip (all (H, W) unless noted)."""

    surface: np.ndarray  # uint8 Surface codes
    water: np.ndarray  # bool: open water or flooded vegetation
    sar_db: np.ndarray  # (2, H, W) float32 VV, VH in dB, NaN at nodata
    s2: np.ndarray  # (13, H, W) int16 TOA reflectance x10000, 0 at nodata
    cloud: np.ndarray  # uint8 CLEAR/THICK/THIN/CLOUD_SHADOW
    nodata: np.ndarray  # bool: outside the swath
    label: np.ndarray  # int8: 1 water, 0 dry, -1 invalid (nodata or unlabelled)
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
    nodata_prob: float = 0.05,
    pixel_m: float = 10.0,
    pre_event: bool = False,
    snow_prob: float = 0.0,
) -> Scene:
    """Generate one n x n scene.

    Args:
        rng: generator (the scene is a pure function of its state).
        n: side in pixels.
        flood: flood the floodplain (False: permanent water only, e.g. SEN12MS).
        cloud_prob: probability that the optical image has clouds.
        nodata_prob: probability of a no-data sliver at the swath border.
        pixel_m: pixel size in metres (slopes, valley widths and parcel sizes use it).
        pre_event: also simulate the SAR of the same place before the flood (the flooded
            land with its own cover; permanent water as it is). Drawn after everything
            else, so the other layers do not change with it.
        snow_prob: probability of snow on the higher ground (hilly then), bright as cloud
            in optical and dark in SAR (wet snow).
    """
    shape = (n, n)
    k = n / 128.0  # landscape features (valley, lakes, woods) scale with the chip

    # --- terrain: height above the river (m) in a valley, optional hills ---
    has_river = rng.random() < (0.9 if flood else 0.6)
    dist = F.river_distance(rng, n) if has_river else np.full(shape, float(n), np.float32)
    hand = 0.02 * dist * pixel_m + rng.uniform(2.0, 12.0) * (
        F.fractal_noise(rng, shape, 30 * k) + 2.0
    )
    snowy = rng.random() < snow_prob
    hilly = snowy or rng.random() < 0.25
    if hilly:
        hand = hand + rng.uniform(40.0, 120.0) * (F.smooth_noise(rng, shape, 10 * k) + 2.0)
    hand = hand - hand.min()
    dtm = (rng.uniform(5.0, 400.0) + hand).astype(np.float32)
    gy, gx = np.gradient(dtm, pixel_m)  # m per m
    slope = np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)

    # --- field parcels: the unit in which floodplains flood and crops differ ---
    ids = F.parcels(rng, shape, rng.uniform(*PARCEL_M) / pixel_m, rng.uniform(1.0, 2.5))

    # --- water: channel, lakes in lowlands, a fragmented flood of the floodplain ---
    channel = dist < max(1.5, rng.uniform(1.5, 5.0) * k)
    lowland = hand < np.quantile(hand, 0.5)
    lakes = F.blobs(rng, shape, 10 * k, rng.uniform(0.0, 0.03)) & lowland
    flooded = np.zeros(shape, dtype=bool)
    if flood and rng.random() < 0.85:
        flooded = _flood(rng, hand, ids)
    water = channel | lakes | flooded
    flood_only = flooded & ~channel & ~lakes

    # --- land cover: woods, crop parcels, bare fields, towns, sand and roads, snow ---
    veg = F.smooth_noise(rng, shape, 10 * k)
    n_ids = int(ids.max()) + 1
    surface = np.where(veg > 0.3, Surface.FOREST, Surface.CROP).astype(np.uint8)
    bare = (rng.random(n_ids) < rng.uniform(0.0, 0.12))[ids] & (surface == Surface.CROP)
    urban = F.blobs(rng, shape, 6 * k, rng.uniform(0.0, 0.06)) & ~water
    roll = rng.random()
    dark_frac = rng.uniform(0.2, 0.5) if roll < 0.1 else rng.uniform(0.0, 0.1)
    roads = F.lines(rng, shape, int(rng.integers(0, 3)), rng.uniform(1.0, 2.5))
    dark = (F.blobs(rng, shape, 7 * k, dark_frac) | roads | bare) & ~water & ~urban
    surface[urban] = Surface.URBAN
    surface[dark] = Surface.DARK_LAND
    if snowy:
        snow_line = np.quantile(dtm, 1.0 - rng.uniform(0.15, 0.6))
        surface[(dtm + 8.0 * F.fractal_noise(rng, shape, 3 * k) > snow_line) & ~water] = (
            Surface.SNOW
        )
    dry_surface = surface.copy()  # the land before the event
    surface[water] = Surface.OPEN_WATER
    tall = (rng.random(n_ids) < 0.1)[ids] | (veg > 0.6)  # woods and tall crops
    surface[flood_only & tall] = Surface.FLOODED_VEG
    # Radar shadow on steep back-slopes (the sensor looks east here: slopes facing west).
    shadow = np.zeros(shape, dtype=bool)
    if hilly:
        back = -gx
        shadow = (back > max(float(np.quantile(back, 0.93)), 0.2)) & ~water

    sar_db = backscatter(rng, surface, shadow, water, ids, n)
    refl = surface_reflectance(rng, surface, ids, _hillshade(rng, gx, gy), n)
    refl, cloud = add_clouds(rng, refl, cloud_prob, n)
    # Valid reflectances are >= 1 so that 0 stays reserved for nodata.
    s2 = np.clip(np.rint(refl), 1, 20000).astype(np.int16)

    nodata = np.zeros(shape, dtype=bool)
    if rng.random() < nodata_prob:
        nodata = F.edge_nodata(rng, n, rng.uniform(*SLIVER_AREA))
    sar_db[:, nodata] = np.nan
    s2[:, nodata] = 0
    label = water.astype(np.int8)
    label[nodata | (rng.random(shape) < rng.uniform(0.0, LABEL_GAPS))] = -1
    codes = np.array([LC_CODES[Surface(s)] for s in range(len(Surface))], dtype=np.uint8)
    lc = np.moveaxis(codes[surface], -1, 0)  # (4, H, W)
    sar_db_pre = None
    if pre_event:
        before = np.where(flood_only, dry_surface, surface).astype(np.uint8)
        sar_db_pre = backscatter(rng, before, shadow, water & ~flood_only, ids, n)
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


def _flood(rng: np.random.Generator, hand: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The flooded pixels of an event: parcels and depressions below a flood level.

    Each pixel's effective height is its HAND plus an offset of its parcel (field level,
    drainage: parcels at the same height flood or not) plus micro-relief (dry holes and
    isolated ponds inside a parcel); pixels below the level flood. About half the parcel
    boundaries are raised (tracks, hedges, dykes) and stay dry.
    """
    shape = hand.shape
    extent = rng.uniform(0.06, 0.45)  # share of the chip below the level before offsets
    level = float(np.quantile(hand, extent))
    lo = float(np.quantile(hand, max(extent - 0.2, 0.0)))
    hi = float(np.quantile(hand, min(extent + 0.2, 1.0)))
    spread = max(hi - lo, 0.5)  # m: the height range around the level
    n_ids = int(ids.max()) + 1
    offset = rng.normal(0.0, rng.uniform(0.3, 0.8) * spread, size=n_ids)
    micro = F.fractal_noise(rng, shape, rng.uniform(2.0, 4.0), octaves=2)
    height = hand + offset[ids] + rng.uniform(0.1, 0.35) * spread * micro
    dykes = F.boundaries(ids) & (rng.random(n_ids) < 0.5)[ids]
    return (height < level) & ~dykes


def _hillshade(rng: np.random.Generator, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Terrain illumination factor (1 on flat ground) for a random sun, from the slopes."""
    azimuth = rng.uniform(0.0, 2 * np.pi)
    zenith = np.radians(rng.uniform(30.0, 65.0))
    sun = np.array([np.sin(zenith) * np.cos(azimuth), np.sin(zenith) * np.sin(azimuth)])
    # cos(incidence) / cos(zenith) for the surface normal (-gx, -gy, 1) / |.|.
    cos_i = (np.cos(zenith) - gx * sun[0] - gy * sun[1]) / np.sqrt(1.0 + gx**2 + gy**2)
    return np.clip(cos_i / np.cos(zenith), 0.3, 1.6).astype(np.float32)
