"""Synthetic OMBRIA: bi-temporal S1 VV and S2 (B11, B8, B3) PNGs with flood masks, as released."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from floodlab.bands import S2_BANDS
from floodlab.data.registry import Progress
from floodlab.data.synth.scene import make_scene
from floodlab.io import atomic_path

TEST_FRACTION = 0.1  # OMBRIA: 70 test patches of 694


def stretch_0_255(values: np.ndarray) -> np.ndarray:
    """Stretch one image from its own min..max to 0..255 (uint8), as OMBRIA's S1 PNGs are.

    Nodata (NaN) becomes 0, like the black of an empty PNG.
    """
    finite = np.isfinite(values)
    out = np.zeros(values.shape, dtype=np.uint8)
    if not finite.any():
        return out
    lo, hi = float(values[finite].min()), float(values[finite].max())
    scaled = (values - lo) / (hi - lo if hi > lo else 1.0) * 255.0
    out[finite] = np.clip(np.rint(scaled[finite]), 0, 255).astype(np.uint8)
    return out


def _png(path: Path, image: np.ndarray) -> None:
    """Write a (H, W) grey or (3, H, W) RGB uint8 PNG, atomically."""
    data = image[None] if image.ndim == 2 else image
    with (
        warnings.catch_warnings(),
        atomic_path(path, suffix=".png") as tmp,
    ):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        profile = {"width": data.shape[2], "height": data.shape[1], "count": data.shape[0]}
        with rasterio.open(tmp, "w", driver="PNG", dtype="uint8", **profile) as dst:
            dst.write(data)


def write(
    root: Path, chips: int, size: int, seed: int, progress: Progress | None = None, **options: Any
) -> Path:
    """Write `chips` patches ``<id>`` (0001, 0002, ...) under OmbriaS1/ and OmbriaS2/.

    Each patch is one synthetic scene seen before and after a flood: VV post-event (AFTER)
    and pre-event (BEFORE), each stretched by its own min..max to 0..255; the post-event
    optical image as reflectance x 255 of (B11, B8, B3); the mask 255 where the event
    flooded land (permanent water stays 0, as in OMBRIA). About a tenth of the patches go
    to test/, the rest to train/.
    """
    n_test = max(1, round(TEST_FRACTION * chips))
    optical = [S2_BANDS.index(b) for b in ("B11", "B8", "B3")]
    for i in range(chips):
        pid = f"{i + 1:04d}"
        split = "test" if i >= chips - n_test else "train"
        scene = make_scene(
            np.random.default_rng([seed, 60, i]), size, cloud_prob=0.0, nodata_prob=0.0,
            pre_event=True,
        )  # fmt: skip
        assert scene.sar_db_pre is not None
        s1 = root / "OmbriaS1" / split
        _png(s1 / "AFTER" / f"S1_after_{pid}.png", stretch_0_255(scene.sar_db[0]))
        _png(s1 / "BEFORE" / f"S1_before_{pid}.png", stretch_0_255(scene.sar_db_pre[0]))
        mask = np.where(scene.flood, 255, 0).astype(np.uint8)
        _png(s1 / "MASK" / f"S1_mask_{pid}.png", mask)
        refl = scene.s2[optical].astype(np.float32) * (255.0 / 10000.0)
        rgb = np.clip(np.rint(refl), 0, 255).astype(np.uint8)
        s2 = root / "OmbriaS2" / split
        _png(s2 / "AFTER" / f"S2_after_{pid}.png", rgb)
        _png(s2 / "MASK" / f"S2_mask_{pid}.png", mask)
        if progress:
            progress(1)
    return root


def count(chips: int, **options: Any) -> int:
    """Number of patches `write` produces."""
    return chips
