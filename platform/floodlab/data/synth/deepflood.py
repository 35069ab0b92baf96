"""Synthetic DeepFlood tree: per-tile folders with one GeoTIFF per layer and polarisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from floodlab.bands import S2_BANDS
from floodlab.data.geotiff import write_raster
from floodlab.data.registry import Progress
from floodlab.data.synth.scene import make_scene

# Flood events (name, UTM EPSG, easting, northing of the first tile in metres).
EVENTS: tuple[tuple[str, int, float, float], ...] = (
    ("Kerala_2018", 32643, 700_000.0, 1_100_000.0),
    ("Houston_2017", 32615, 270_000.0, 3_300_000.0),
    ("Beira_2019", 32736, 690_000.0, 7_810_000.0),
    ("Sindh_2022", 32642, 650_000.0, 2_950_000.0),
    ("Emilia_2023", 32632, 700_000.0, 4_920_000.0),
    ("Brisbane_2022", 32756, 500_000.0, 6_960_000.0),
)
TILES_PER_EVENT = 4
# Numeric nodata on purpose: DeepFlood rasters come from GIS exports that use -9999.
NODATA = -9999.0
FLOOD_NODATA = 255


def write(
    root: Path, chips: int, size: int, seed: int, progress: Progress | None = None, **options: Any
) -> Path:
    """Write `chips` tiles as `<event>/tile_<nnn>/{S1_VV,S1_VH,S2,NDWI,SLOPE,DTM,FLOOD}.tif`.

    S1 layers are float32 dB with nodata -9999, S2 int16 x10000 with nodata 0, NDWI
    float32 (McFeeters, from S2) with NaN nodata, SLOPE (degrees) and DTM (m) float32,
    FLOOD uint8 1/0 with nodata 255 where the flood extent is unknown (cloud, no data).
    """
    for i in range(chips):
        name, epsg, x, y = EVENTS[(i // TILES_PER_EVENT) % len(EVENTS)]
        cycle = i // (TILES_PER_EVENT * len(EVENTS))
        event = name if cycle == 0 else f"{name}_{cycle + 1}"
        t = i % TILES_PER_EVENT
        tf = (10.0, 0.0, x + t * size * 10.0 + cycle * 50_000.0, 0.0, -10.0, y)
        crs = f"EPSG:{epsg}"
        scene = make_scene(np.random.default_rng([seed, 20, i]), size)
        folder = root / event / f"tile_{t:03d}"
        for pol, band in (("VV", 0), ("VH", 1)):
            db = np.where(scene.nodata, NODATA, scene.sar_db[band]).astype(np.float32)
            write_raster(folder / f"S1_{pol}.tif", db, crs=crs, transform=tf, nodata=NODATA)
        write_raster(
            folder / "S2.tif", scene.s2, crs=crs, transform=tf, nodata=0, descriptions=S2_BANDS
        )
        b3 = scene.s2[S2_BANDS.index("B3")].astype(np.float32)
        b8 = scene.s2[S2_BANDS.index("B8")].astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            ndwi = np.where(scene.nodata, np.nan, (b3 - b8) / (b3 + b8)).astype(np.float32)
        write_raster(folder / "NDWI.tif", ndwi, crs=crs, transform=tf, nodata=float("nan"))
        write_raster(folder / "SLOPE.tif", scene.slope, crs=crs, transform=tf, nodata=NODATA)
        write_raster(folder / "DTM.tif", scene.dtm, crs=crs, transform=tf, nodata=NODATA)
        flood = np.where(scene.label < 0, FLOOD_NODATA, scene.label).astype(np.uint8)
        write_raster(folder / "FLOOD.tif", flood, crs=crs, transform=tf, nodata=FLOOD_NODATA)
        if progress:
            progress(1)
    return root


def count(chips: int, **options: Any) -> int:
    """Number of tiles `write` produces."""
    return chips
