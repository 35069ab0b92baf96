"""Synthetic SAR-KD numpy folders: `train|val/img/<id>_<band>.npy` and `train|val/lab/<id>.npy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from floodlab.bands import S2_BANDS
from floodlab.data.registry import Progress
from floodlab.data.synth.scene import make_scene
from floodlab.data.synth.splitplan import split_groups

# Patches per scene (a scene is cut into neighbouring patches in the original data).
PATCHES_PER_SCENE = 2
# Label value of invalid pixels in the label arrays (the reader maps it to -1).
INVALID = 255


def write(
    root: Path, chips: int, size: int, seed: int, progress: Progress | None = None, **options: Any
) -> Path:
    """Write `chips` patches `scene<sss>_<t>` split ~80/20 into train/ and val/ by scene.

    Band files are (H, W) float32: VV, VH in dB; B2, B3, B4 reflectance x10000; NDVI and
    NDWI in [-1, 1]; NaN at nodata. Labels are (H, W) uint8 1 water, 0 dry, 255 invalid.
    """
    n_scenes = max(2, -(-chips // PATCHES_PER_SCENE))
    scene_split = split_groups(n_scenes, {"train": 0.8, "val": 0.2})
    for i in range(chips):
        s = i % n_scenes
        pid = f"scene{s:03d}_{i // n_scenes}"
        scene = make_scene(np.random.default_rng([seed, 40, i]), size)
        refl = scene.s2.astype(np.float32)
        refl[:, scene.nodata] = np.nan
        b = {name: refl[S2_BANDS.index(name)] for name in ("B2", "B3", "B4", "B8")}
        with np.errstate(divide="ignore", invalid="ignore"):
            ndvi = (b["B8"] - b["B4"]) / (b["B8"] + b["B4"])
            ndwi = (b["B3"] - b["B8"]) / (b["B3"] + b["B8"])
        bands = {
            "VV": scene.sar_db[0],
            "VH": scene.sar_db[1],
            "B2": b["B2"],
            "B3": b["B3"],
            "B4": b["B4"],
            "NDVI": ndvi,
            "NDWI": ndwi,
        }
        folder = root / scene_split[s]
        for name, arr in bands.items():
            _save(folder / "img" / f"{pid}_{name}.npy", arr.astype(np.float32))
        label = np.where(scene.label < 0, INVALID, scene.label).astype(np.uint8)
        _save(folder / "lab" / f"{pid}.npy", label)
        if progress:
            progress(1)
    return root


def _save(path: Path, arr: np.ndarray) -> None:
    """np.save to a temporary name, then rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, arr, allow_pickle=False)
    tmp.replace(path)


def count(chips: int, **options: Any) -> int:
    """Number of patches `write` produces."""
    return chips
