"""Scene prediction spread over Ray workers gives the same map as in one process."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from floodlab.predict.scene import predict_scene


class SmoothingModel:
    """A 5x5 box filter then sigmoid: neighbours matter, so strip borders would show."""

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        pad = np.pad(x[:, :1], ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
        h, w = x.shape[2:]
        box = sum(pad[:, :, i : i + h, j : j + w] for i in range(5) for j in range(5)) / 25.0
        return {"prob": 1.0 / (1.0 + np.exp(-box))}


@pytest.mark.ray
def test_parallel_tiles_on_ray_match_the_serial_result(ray_session, tmp_path: Path) -> None:
    ray_session.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    rng = np.random.default_rng(0)
    data = rng.standard_normal((2, 333, 150), dtype=np.float32)
    data[:, 100:110] = np.nan
    src = tmp_path / "scene.tif"
    profile = dict(driver="GTiff", width=150, height=333, count=2, dtype="float32", nodata=np.nan)
    with rasterio.open(
        src, "w", crs="EPSG:32633", transform=Affine(10, 0, 0, 0, -10, 0), **profile
    ) as ds:
        ds.write(data)
    kw = dict(bands=["VV", "VH"], window=64, overlap=16, input_bands=["VV", "VH"])
    serial = predict_scene(SmoothingModel(), src, tmp_path / "serial.tif", **kw)
    parallel = predict_scene(SmoothingModel(), src, tmp_path / "parallel.tif", parallel=2, **kw)
    with rasterio.open(serial.path) as a, rasterio.open(parallel.path) as b:
        np.testing.assert_allclose(b.read(), a.read(), atol=1e-6)
    assert parallel.valid_pixels == serial.valid_pixels == 323 * 150
