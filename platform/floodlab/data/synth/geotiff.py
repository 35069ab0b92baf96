"""Synthetic own-data folder: `images/<chip>.tif` stacks and `labels/<chip>.tif` masks in two CRSs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from floodlab.bands import S1_BANDS, S1_PRE_BANDS, S2_BANDS
from floodlab.data.geotiff import write_raster
from floodlab.data.registry import Progress
from floodlab.data.synth.scene import Scene, make_scene

# Band order of the synthetic image stacks (as a researcher's analysis-ready export).
STACK_BANDS: tuple[str, ...] = S1_BANDS + S1_PRE_BANDS + S2_BANDS
LABEL_NODATA = 255  # invalid label pixels, tagged as the mask's nodata
PIXEL_M = 10.0
PIXEL_DEG = 8.983152841195215e-05  # 10 m at the equator
# (CRS, origin x, origin y, pixel size): chips alternate between UTM 33N and lon/lat, as
# chips cut from scenes of different zones do.
GRIDS: tuple[tuple[str, float, float, float], ...] = (
    ("EPSG:32633", 500_000.0, 5_000_000.0, PIXEL_M),
    ("EPSG:4326", 14.0, 45.0, PIXEL_DEG),
)


def stack_of(scene: Scene) -> np.ndarray:
    """(17, H, W) float32: VV, VH, VV_pre, VH_pre in dB, B1..B12 reflectance x 10000, NaN
    at nodata."""
    assert scene.sar_db_pre is not None
    s2 = scene.s2.astype(np.float32)
    s2[:, scene.nodata] = np.nan
    return np.concatenate([scene.sar_db, scene.sar_db_pre, s2]).astype(np.float32)


def transform_of(i: int, size: int) -> tuple[str, tuple[float, ...]]:
    """CRS and geotransform of chip i: even chips in UTM, odd ones in lon/lat, side by side."""
    crs, x0, y0, px = GRIDS[i % len(GRIDS)]
    return crs, (px, 0.0, x0 + (i // len(GRIDS)) * size * px, 0.0, -px, y0)


def write(
    root: Path, chips: int, size: int, seed: int, progress: Progress | None = None, **options: Any
) -> Path:
    """Write `chips` chips `chip_<iii>` in the geotiff reader's default layout; returns `root`.

    `images/<chip>.tif` is a float32 stack of STACK_BANDS described by name, NaN nodata;
    `labels/<chip>.tif` is uint8, 1 water, 0 dry, 255 invalid (tagged nodata). No split
    folders: converting it announces the seeded random grouped split.
    """
    for i in range(chips):
        chip = f"chip_{i:03d}"
        scene = make_scene(np.random.default_rng([seed, 70, i]), size, pre_event=True)
        crs, tf = transform_of(i, size)
        write_raster(
            root / "images" / f"{chip}.tif", stack_of(scene), crs=crs, transform=tf,
            nodata=float("nan"), descriptions=STACK_BANDS,
        )  # fmt: skip
        label = np.where(scene.label < 0, LABEL_NODATA, scene.label).astype(np.uint8)
        write_raster(
            root / "labels" / f"{chip}.tif", label, crs=crs, transform=tf, nodata=LABEL_NODATA
        )
        if progress:
            progress(1)
    return root


def count(chips: int, **options: Any) -> int:
    """Number of chips `write` produces."""
    return chips
