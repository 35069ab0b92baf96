"""Synthetic Sen1Floods11 v1.1 tree: hand and weak chips, official 2-column split CSVs."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from floodlab.bands import S1_BANDS, S2_BANDS
from floodlab.data.geotiff import write_raster
from floodlab.data.otsu import otsu_water_mask
from floodlab.data.registry import Progress
from floodlab.data.synth.scene import THICK, Scene, make_scene
from floodlab.io import atomic_write_text

# Flood events of the real dataset and a plausible (lon, lat) of each, degrees.
EVENTS: dict[str, tuple[float, float]] = {
    "Bolivia": (-65.6, -14.6),
    "Ghana": (-0.8, 10.3),
    "India": (91.5, 26.2),
    "Mekong": (105.3, 11.3),
    "Nigeria": (6.6, 7.8),
    "Pakistan": (70.8, 28.4),
    "Paraguay": (-57.7, -25.9),
    "Somalia": (45.6, 3.4),
    "Spain": (-0.8, 38.1),
    "Sri-Lanka": (80.3, 7.5),
    "USA": (-90.2, 36.2),
}
HOLDOUT = "Bolivia"
# Pixel size of the real chips: 10 m at the equator in degrees (EPSG:4326).
PIXEL_DEG = 8.983152841195215e-05
EVENTS_DIR = Path("data/flood_events")
# The tags of the real S1 files: NaN nodata, bands described VV, VH.
S1_TAGS: dict[str, Any] = {"nodata": float("nan"), "descriptions": S1_BANDS}


def plan_chips(chips: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(event, official split stem) per hand-labelled chip, splits grouped by event.

    About 10 % of the chips form the Bolivia hold-out (from 10 chips on); the others are
    split ~70/15/15 into train/valid/test with each event in exactly one split, so every
    split gets at least one chip (chips >= 3).
    """
    n_bol = max(1, round(0.1 * chips)) if chips >= 10 else 0
    m = chips - n_bol
    n_val = max(1, round(0.15 * m))
    n_test = max(1, round(0.15 * m))
    n_train = m - n_val - n_test
    if n_train < 1:
        raise ValueError(f"at least 3 chips are needed for train/valid/test, got {chips}")
    events = [e for e in EVENTS if e != HOLDOUT]
    rng.shuffle(events)
    per = max(4, math.ceil(m / 8))
    e_val = math.ceil(n_val / per)
    e_test = math.ceil(n_test / per)
    e_train = max(1, min(len(events) - e_val - e_test, math.ceil(n_train / per)))
    groups = {
        "train": events[:e_train],
        "valid": events[e_train : e_train + e_val],
        "test": events[e_train + e_val : e_train + e_val + e_test],
    }
    plan: list[tuple[str, str]] = []
    for split, count in (("train", n_train), ("valid", n_val), ("test", n_test)):
        plan += [(groups[split][i % len(groups[split])], split) for i in range(count)]
    plan += [(HOLDOUT, "bolivia")] * n_bol
    return plan


def _transform(event: str, slot: int, size: int, rng: np.random.Generator) -> tuple[float, ...]:
    """Geotransform of the slot-th chip of an event: chips tile near the event's centre."""
    lon, lat = EVENTS[event]
    step = size * PIXEL_DEG * 1.25
    x0 = lon + (slot % 5) * step + rng.uniform(0, 0.2 * step)
    y0 = lat - (slot // 5) * step - rng.uniform(0, 0.2 * step)
    return (PIXEL_DEG, 0.0, x0, 0.0, -PIXEL_DEG, y0)


def _write_layer(path: Path, data: np.ndarray, transform: tuple[float, ...], **tags: Any) -> None:
    """One layer of a chip, in the CRS of the real files (EPSG:4326)."""
    write_raster(path, data, crs="EPSG:4326", transform=transform, **tags)


def _s2_index_label(scene: Scene) -> np.ndarray:
    """Weak optical label: NDWI (B3, B8) > 0 and MNDWI (B3, B11) > 0; -1 under cloud/nodata."""
    b3, b8, b11 = (scene.s2[S2_BANDS.index(b)].astype(np.float32) for b in ("B3", "B8", "B11"))
    with np.errstate(divide="ignore", invalid="ignore"):
        ndwi = (b3 - b8) / (b3 + b8)
        mndwi = (b3 - b11) / (b3 + b11)
    out = ((ndwi > 0) & (mndwi > 0)).astype(np.int16)
    out[(scene.cloud == THICK) | scene.nodata] = -1
    return out


def write(
    root: Path, chips: int, size: int, seed: int, progress: Progress | None = None, **options: int
) -> Path:
    """Write a Sen1Floods11 v1.1 tree under `root/v1.1` and return that folder.

    Options:
        weak_chips: number of weakly labelled chips (default chips // 2), in no split.
    """
    base = root / "v1.1"
    ev = base / EVENTS_DIR
    rng = np.random.default_rng([seed, 0])
    plan = plan_chips(chips, rng)
    n_weak = int(options.get("weak_chips", chips // 2))
    ids = rng.choice(np.arange(10_000, 2_000_000), size=len(plan) + n_weak, replace=False)
    slots: dict[str, int] = {}

    def chip_scene(event: str, stream: int, i: int) -> tuple[Scene, tuple[float, ...]]:
        """The scene of a chip of `event` and its geotransform (the event's next slot)."""
        crng = np.random.default_rng([seed, stream, i])
        slot = slots[event] = slots.get(event, -1) + 1
        tf = _transform(event, slot, size, crng)
        return make_scene(crng, size), tf

    rows: dict[str, list[tuple[str, str]]] = {"train": [], "valid": [], "test": [], "bolivia": []}
    hand = ev / "HandLabeled"
    for i, (event, split) in enumerate(plan):
        chip = f"{event}_{ids[i]}"
        scene, tf = chip_scene(event, 1, i)
        _write_layer(hand / "S1Hand" / f"{chip}_S1Hand.tif", scene.sar_db, tf, **S1_TAGS)
        _write_layer(
            hand / "S2Hand" / f"{chip}_S2Hand.tif", scene.s2, tf, nodata=0, descriptions=S2_BANDS
        )
        # Real LabelHand files are int16 with -1 invalid and no nodata tag.
        label = scene.label.astype(np.int16)
        _write_layer(hand / "LabelHand" / f"{chip}_LabelHand.tif", label, tf)
        rows[split].append((f"{chip}_S1Hand.tif", f"{chip}_LabelHand.tif"))
        if progress:
            progress(1)
    weak, weak_events = ev / "WeaklyLabeled", list(EVENTS)
    for j in range(n_weak):
        event = weak_events[j % len(weak_events)]
        chip = f"{event}_{ids[len(plan) + j]}"
        scene, tf = chip_scene(event, 2, j)
        _write_layer(weak / "S1Weak" / f"{chip}_S1Weak.tif", scene.sar_db, tf, **S1_TAGS)
        otsu = otsu_water_mask(scene.sar_db[0]).astype(np.int16)  # -1 where VV is nodata
        _write_layer(weak / "S1OtsuLabelWeak" / f"{chip}_S1OtsuLabelWeak.tif", otsu, tf)
        index_label = _s2_index_label(scene)
        _write_layer(weak / "S2IndexLabelWeak" / f"{chip}_S2IndexLabelWeak.tif", index_label, tf)
        if progress:
            progress(1)
    splits = base / "splits" / "flood_handlabeled"
    splits.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        if not lines:  # no Bolivia chips (fewer than 10): no file, since an empty one is refused
            (splits / f"flood_{split}_data.csv").unlink(missing_ok=True)
            continue
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(lines)
        atomic_write_text(splits / f"flood_{split}_data.csv", buf.getvalue())
    return base


def count(chips: int, **options: int) -> int:
    """Number of chips `write` produces (hand + weak), for progress bars."""
    return chips + int(options.get("weak_chips", chips // 2))
