"""Synthetic SEN12MS tree: paired s1/s2/lc patches per season and scene, UTM, pixel-interleaved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from floodlab.data.geotiff import write_raster
from floodlab.data.registry import Progress
from floodlab.data.synth.scene import make_scene

# The four SEN12MS collections (ROI id and season).
COLLECTIONS: tuple[tuple[str, str], ...] = (
    ("ROIs1158", "spring"),
    ("ROIs1868", "summer"),
    ("ROIs1970", "fall"),
    ("ROIs2017", "winter"),
)
# Patches per scene: small scenes so that group-wise splits have several groups.
PATCHES_PER_SCENE = 3


def write(
    root: Path, chips: int, size: int, seed: int, progress: Progress | None = None, **options: Any
) -> Path:
    """Write `chips` patches as `ROIs<id>_<season>/{s1,s2,lc}_<scene>/..._p<n>.tif`; return root.

    Options:
        seasons: write only these seasons (default all four), e.g. ("winter",).

    Patches cycle through the seasons; scenes hold PATCHES_PER_SCENE adjacent patches
    in one UTM zone. s1 is float32 dB (VV, VH), s2 uint16 x10000 (cloud-free, as the
    dataset was curated), lc uint16 (IGBP, LCCS LC, LU, SH). No split lists are written
    (the release has none); the converter splits by group (season and scene).
    """
    seasons = tuple(options.get("seasons") or (c[1] for c in COLLECTIONS))
    collections = [c for c in COLLECTIONS if c[1] in seasons]
    if not collections:
        raise ValueError(f"seasons must be among {[c[1] for c in COLLECTIONS]}, got {seasons}")
    per_season: dict[str, int] = {}
    for i in range(chips):
        roi, season = collections[i % len(collections)]
        k = per_season[season] = per_season.get(season, -1) + 1
        scene, patch = 1 + k // PATCHES_PER_SCENE, 1 + k % PATCHES_PER_SCENE
        srng = np.random.default_rng([seed, 10, COLLECTIONS.index((roi, season)), scene])
        zone = int(srng.integers(1, 61))
        epsg = (32600 if srng.random() < 0.7 else 32700) + zone
        x0 = float(srng.uniform(200_000, 700_000)) + (patch - 1) * size * 10.0
        y0 = float(srng.uniform(1_000_000, 8_000_000))
        tf = (10.0, 0.0, x0, 0.0, -10.0, y0)
        crs = f"EPSG:{epsg}"
        rng = np.random.default_rng([seed, 11, i])
        scene_ = make_scene(rng, size, flood=False, cloud_prob=0.0, nodata_prob=0.0)
        folder = root / f"{roi}_{season}"
        stem = f"{roi}_{season}_{{mod}}_{scene}_p{patch}.tif"
        # SEN12MS files are pixel-interleaved, uncompressed, without band descriptions.
        for mod, arr in (
            ("s1", scene_.sar_db),
            ("s2", scene_.s2.astype(np.uint16)),
            ("lc", scene_.lc.astype(np.uint16)),
        ):
            write_raster(
                folder / f"{mod}_{scene}" / stem.format(mod=mod),
                arr,
                crs=crs,
                transform=tf,
                interleave="pixel",
                compress=None,
            )
        if progress:
            progress(1)
    return root


def count(chips: int, **options: Any) -> int:
    """Number of patches `write` produces."""
    return chips
