"""Synthetic CloudSEN12 folder: `s2_toa/` and `cloud/` GeoTIFFs plus train/val/test CSVs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from floodlab.data.geotiff import write_raster
from floodlab.data.registry import Progress
from floodlab.data.synth.scene import Scene, make_scene
from floodlab.data.synth.splitplan import split_groups
from floodlab.io import atomic_write_text

# Images per region of interest (ROI): CloudSEN12 samples several dates per ROI.
IMAGES_PER_ROI = 2
# Share of images with clouds: CloudSEN12 deliberately spans clear to overcast scenes.
CLOUDY = 0.85
# Share of images with snow on the higher ground: CloudSEN12 samples every climate, and
# snow is the classic false cloud of an RGB cloud mask.
SNOWY = 0.2


def cloud_scene(rng: np.random.Generator, size: int) -> Scene:
    """The synthetic scene of one CloudSEN12 patch (no flood; clouds, snow and no-data)."""
    return make_scene(rng, size, flood=False, cloud_prob=CLOUDY, nodata_prob=0.1, snow_prob=SNOWY)


def write(
    root: Path, chips: int, size: int, seed: int, progress: Progress | None = None, **options: Any
) -> Path:
    """Write `chips` patches `ROI_<nnnnn>__<date>_<date>_T<tile>.tif` and the split CSVs.

    s2_toa files are 13-band uint16 TOA reflectance x10000 (pixel-interleaved, 0 nodata);
    cloud files uint8 0 clear, 1 thick, 2 thin, 3 shadow. ROIs are split ~70/15/15 into
    train/val/test, whole ROIs at a time; the CSVs hold one id per line, no header.
    """
    n_roi = max(3, -(-chips // IMAGES_PER_ROI))
    roi_split = split_groups(n_roi, {"train": 0.7, "val": 0.15, "test": 0.15})
    rows: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i in range(chips):
        roi = i % n_roi
        rng = np.random.default_rng([seed, 30, i])
        grng = np.random.default_rng([seed, 31, roi])
        zone = int(grng.integers(1, 61))
        tile = f"{zone:02d}{'CDEFGHJKLMNPQRSTUVWX'[int(grng.integers(0, 20))]}" + "".join(
            grng.choice(list("ABCDEFGHJKLMNPQRSTUV"), size=2)
        )
        day = int(rng.integers(0, 365))
        date = np.datetime64("2020-01-01") + np.timedelta64(day, "D")
        stamp = str(date).replace("-", "") + f"T{int(rng.integers(90000, 160000)):06d}"
        pid = f"ROI_{roi + 1:05d}__{stamp}_{stamp}_T{tile}"
        epsg = 32600 + zone
        tf = (10.0, 0.0, float(grng.uniform(2e5, 7e5)), 0.0, -10.0, float(grng.uniform(1e6, 8e6)))
        scene = cloud_scene(rng, size)
        write_raster(
            root / "s2_toa" / f"{pid}.tif",
            scene.s2.astype(np.uint16),
            crs=f"EPSG:{epsg}",
            transform=tf,
            nodata=0,
            interleave="pixel",
        )
        write_raster(root / "cloud" / f"{pid}.tif", scene.cloud, crs=f"EPSG:{epsg}", transform=tf)
        rows[roi_split[roi]].append(pid)
        if progress:
            progress(1)
    for split, ids in rows.items():
        atomic_write_text(root / f"{split}.csv", "".join(f"{pid}\n" for pid in ids))
    return root


def count(chips: int, **options: Any) -> int:
    """Number of patches `write` produces."""
    return chips
