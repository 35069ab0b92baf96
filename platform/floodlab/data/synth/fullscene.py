"""A synthetic full Sentinel-1 scene (GeoTIFF, any size) with its truth mask, for flood mapping.

Training chips are small; a flood map is made for a whole scene that is not a multiple of
the prediction window. This writes such a scene from the same physical model as the chips
(`floodlab.data.synth.scene`): one tile per block, stitched, in EPSG:32630 (UTM 30N) at
10 m, VV/VH in dB with NaN nodata (as Sen1Floods11 S1Hand), plus the water truth as a
separate int16 file (-1 invalid, 0 dry, 1 water).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from floodlab.bands import S1_BANDS
from floodlab.data.geotiff import write_raster
from floodlab.data.synth.scene import make_scene

SCENE_CRS = "EPSG:32630"
PIXEL_M = 10.0


def write_scene(
    out_dir: str | Path,
    *,
    height: int = 1000,
    width: int = 1400,
    tile: int = 256,
    seed: int = 0,
    name: str = "scene",
) -> tuple[Path, Path]:
    """Write `<name>_S1.tif` (VV, VH dB, NaN nodata) and `<name>_truth.tif` into `out_dir`.

    The scene is stitched from independent `tile`-pixel synthetic tiles, so it has the
    texture and confounders of the training chips at any size.

    Returns:
        (SAR scene path, truth path).
    """
    out = Path(out_dir)
    rng = np.random.default_rng([seed, 7])
    ny, nx = -(-height // tile), -(-width // tile)
    sar = np.full((2, ny * tile, nx * tile), np.nan, dtype=np.float32)
    truth = np.full((ny * tile, nx * tile), -1, dtype=np.int16)
    for iy in range(ny):
        for ix in range(nx):
            s = make_scene(rng, tile, cloud_prob=0.0, nodata_prob=0.0)
            ys, xs = slice(iy * tile, (iy + 1) * tile), slice(ix * tile, (ix + 1) * tile)
            sar[:, ys, xs] = s.sar_db
            truth[ys, xs] = s.label
    sar, truth = sar[:, :height, :width], truth[:height, :width]
    # A no-data wedge along one swath border, as real GRD scenes have.
    yy, xx = np.mgrid[:height, :width]
    wedge = xx < (0.06 * width) * (1.0 - yy / height)
    sar[:, wedge] = np.nan
    truth[wedge] = -1
    transform = (PIXEL_M, 0.0, 440_000.0, 0.0, -PIXEL_M, 4_480_000.0)
    s1 = write_raster(
        out / f"{name}_S1.tif",
        sar,
        crs=SCENE_CRS,
        transform=transform,
        nodata=float("nan"),
        descriptions=list(S1_BANDS),
    )
    lab = write_raster(
        out / f"{name}_truth.tif",
        truth,
        crs=SCENE_CRS,
        transform=transform,
        nodata=None,
        descriptions=["water"],
    )
    return s1, lab
