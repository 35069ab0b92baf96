"""Synthetic SAR beside real unlabelled Sentinel-1 scenes, and how hard the synthetic tasks are.

Reads every real backscatter file (dB, one polarisation per file, named ``*VV*``/``*VH*``)
under the real-scenes folder. The real scenes carry no labels, so only class-independent
statistics are compared: percentiles of the valid dB values and a two-component Gaussian
mixture fitted to them (a dark mode -- water, where a scene holds some -- and a land
mode). A real scene *holds water* when its fit finds a dark component of at least 10 %
weight at least 6 dB below the other one. The synthetic set mirrors the real one: for
each real scene, `--per-scene` synthetic scenes, flooded (as the Sen1Floods11 writer
draws them) where the real scene holds water and without a flood otherwise. Prints one
JSON line with

- ``real`` and ``synthetic``, per polarisation: the mean of each scene's percentiles, the
  mean land mode and spread (dB), and the mean water mode over the scenes holding water;
- ``max_abs_diff_db``: per polarisation, the largest difference between the real and the
  synthetic percentiles from the 1st to the 99th;
- ``flood``: scenes as the synthetic Sen1Floods11 writer draws them: water and invalid
  fractions and Otsu's flood IoU on VV (each image's own threshold; pooled over pixels
  and mean per image);
- ``cloud``: scenes as the synthetic CloudSEN12 writer draws them: the cloud fraction and
  the IoU of cloud = RGB brightness above a threshold (the best single threshold over all
  images, an upper bound for any brightness threshold, and each image's Otsu threshold).

Usage: .venv/bin/python benchmarks/synth_calibration.py [--real DIR] [--scenes 48] [--size 128]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import rasterio

from floodlab.bands import S2_BANDS
from floodlab.data.load.normalize import CLOUD_CLIP
from floodlab.data.otsu import otsu_threshold, otsu_water_mask
from floodlab.data.synth.cloudsen12 import cloud_scene
from floodlab.data.synth.scene import THICK, THIN, make_scene

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "realdata" / "s1_scenes"
PERCENTILES = (0.1, 1, 5, 25, 50, 75, 95, 99, 99.9)
POLS = ("VV", "VH")


def percentiles(values: np.ndarray) -> dict[str, float]:
    """Percentiles of the finite values, dB, keyed ``p<q>``."""
    v = values[np.isfinite(values)]
    return {
        f"p{q:g}": round(float(x), 2)
        for q, x in zip(PERCENTILES, np.percentile(v, PERCENTILES), strict=True)
    }


def real_scenes(folder: Path) -> dict[str, list[np.ndarray]]:
    """Valid dB values of every real file, by polarisation (nodata and NaN dropped)."""
    out: dict[str, list[np.ndarray]] = {pol: [] for pol in POLS}
    for tif in sorted(folder.rglob("*.tif")):
        pol = next((p for p in POLS if p in tif.name), None)
        if pol is None:
            continue
        with rasterio.open(tif) as src:
            a = src.read(1).astype(np.float64)
            ok = np.isfinite(a) if src.nodata is None else np.isfinite(a) & (a != src.nodata)
        out[pol].append(a[ok])
    return out


def two_modes(values: np.ndarray, iters: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A two-component Gaussian mixture of dB values by EM: (means, stds, weights), dark first."""
    v = values[np.isfinite(values)].astype(np.float64)
    v = v[:: max(1, v.size // 50_000)]  # EM on at most ~50k values
    mean = np.percentile(v, [10.0, 70.0])
    std = np.full(2, v.std() / 2.0)
    weight = np.array([0.3, 0.7])
    for _ in range(iters):
        z = (v[:, None] - mean) / std
        dens = weight / std * np.exp(-0.5 * z * z)
        resp = dens / np.maximum(dens.sum(axis=1, keepdims=True), 1e-300)
        n = resp.sum(axis=0) + 1e-12
        weight = n / n.sum()
        mean = (resp * v[:, None]).sum(axis=0) / n
        std = np.sqrt((resp * (v[:, None] - mean) ** 2).sum(axis=0) / n) + 1e-3
    order = np.argsort(mean)
    return mean[order], std[order], weight[order]


def holds_water(values: np.ndarray) -> bool:
    """Whether a scene's two-mode fit finds a dark mode (>= 10 %, >= 6 dB below the other)."""
    mean, _, weight = two_modes(values)
    return bool(weight[0] >= 0.1 and mean[1] - mean[0] >= 6.0)


def summary(scenes: list[np.ndarray], water: list[bool]) -> dict[str, object]:
    """Mean percentiles, land mode and spread, and water mode of a set of scenes (one pol)."""
    each = [percentiles(s) for s in scenes]
    fits = [two_modes(s) for s in scenes]
    # The land mode is the only mode of a dry scene (the heavier one) and the upper one of
    # a scene holding water.
    land = [f[0][1] if w else f[0][int(np.argmax(f[2]))] for f, w in zip(fits, water, strict=True)]
    spread = [
        f[1][1] if w else f[1][int(np.argmax(f[2]))] for f, w in zip(fits, water, strict=True)
    ]
    wet = [f[0][0] for f, w in zip(fits, water, strict=True) if w]
    return {
        "scenes": len(scenes),
        "water_scenes": int(sum(water)),
        "percentiles": {k: round(float(np.mean([e[k] for e in each])), 2) for k in each[0]},
        "land_mode_db": round(float(np.mean(land)), 2),
        "land_spread_db": round(float(np.mean(spread)), 2),
        "water_mode_db": round(float(np.mean(wet)), 2) if wet else None,
    }


def iou(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """Intersection over union of two boolean masks over valid pixels."""
    union = ((pred | truth) & valid).sum()
    return float((pred & truth & valid).sum() / union) if union else float("nan")


def flood_stats(n: int, size: int) -> dict[str, object]:
    """Percentiles, water/invalid fractions and Otsu IoU of Sen1Floods11-like scenes."""
    scenes = [make_scene(np.random.default_rng([0, 1, i]), size) for i in range(n)]
    labels = np.stack([s.label for s in scenes])
    valid = labels >= 0
    otsu = np.stack([otsu_water_mask(s.sar_db[0]) == 1 for s in scenes])
    per_image = [iou(o, lab == 1, lab >= 0) for o, lab in zip(otsu, labels, strict=True)]
    return {
        "water_fraction": round(float((labels == 1).sum() / valid.sum()), 4),
        "invalid_fraction": round(float(1.0 - valid.mean()), 5),
        "otsu_iou_pooled": round(iou(otsu, labels == 1, valid), 4),
        "otsu_iou_mean_per_image": round(float(np.nanmean(per_image)), 4),
    }


def cloud_stats(n: int, size: int) -> dict[str, object]:
    """Cloud fraction and brightness-threshold IoU of CloudSEN12-like scenes."""
    rgb = [S2_BANDS.index(b) for b in ("B4", "B3", "B2")]
    scenes = [cloud_scene(np.random.default_rng([0, 30, i]), size) for i in range(n)]
    bright = np.stack(
        [np.minimum(s.s2[rgb].astype(np.float32), CLOUD_CLIP).mean(0) for s in scenes]
    )
    cloud = np.stack([np.isin(s.cloud, (THICK, THIN)) for s in scenes])
    valid = np.stack([~s.nodata for s in scenes])
    best = max((iou(bright > t, cloud, valid), float(t)) for t in np.linspace(0.0, CLOUD_CLIP, 161))
    otsu = np.stack(
        [b > otsu_threshold(np.where(v, b, np.nan)) for b, v in zip(bright, valid, strict=True)]
    )
    return {
        "cloud_fraction": round(float(cloud[valid].mean()), 4),
        "brightness_iou_best_threshold": round(best[0], 4),
        "best_threshold": round(best[1], 1),
        "brightness_iou_otsu_per_image": round(iou(otsu, cloud, valid), 4),
    }


def main() -> None:
    """Print the real and synthetic statistics as one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, default=REAL, help="Folder of real S1 dB GeoTIFFs.")
    ap.add_argument("--per-scene", type=int, default=16, help="Synthetic scenes per real one.")
    ap.add_argument("--scenes", type=int, default=48, help="Scenes of the flood/cloud sets.")
    ap.add_argument("--size", type=int, default=128, help="Synthetic scene side, pixels.")
    args = ap.parse_args()
    real = real_scenes(args.real)
    if not any(real.values()):
        raise SystemExit(f"no VV/VH GeoTIFF under {args.real}; pass --real DIR")
    line: dict[str, object] = {"benchmark": "synth_calibration"}
    reals, synths, diffs = {}, {}, {}
    for i, pol in enumerate(POLS):
        if not real[pol]:
            continue
        water = [holds_water(v) for v in real[pol]]
        reals[pol] = summary(real[pol], water)
        # The synthetic mirror: flooded scenes for real scenes holding water, dry otherwise.
        synth, wet = [], []
        for j, flooded in enumerate(water):
            for m in range(args.per_scene):
                rng = np.random.default_rng([0, 2, i, j, m])
                scene = make_scene(rng, args.size, flood=flooded, cloud_prob=0.0)
                synth.append(scene.sar_db[i])
                wet.append(flooded and bool(scene.flood.any()))
        synths[pol] = summary(synth, wet)
        r, s = reals[pol]["percentiles"], synths[pol]["percentiles"]
        keys = [f"p{q:g}" for q in PERCENTILES if 1 <= q <= 99]
        diffs[pol] = round(max(abs(r[k] - s[k]) for k in keys), 2)  # type: ignore[index]
    line |= {"real": reals, "synthetic": synths, "max_abs_diff_db": diffs}
    line["flood"] = flood_stats(args.scenes, args.size)
    line["cloud"] = cloud_stats(args.scenes, args.size)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
