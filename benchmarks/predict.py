"""Full-scene prediction: column bands of windows (floodlab.predict.scene) vs. a whole-scene pass.

For each scene size, a synthetic VV/VH GeoTIFF is written to a temporary folder, then each
method runs in a fresh subprocess (so its peak RSS is its own):

* ``windowed``: `predict_scene` — column bands, each top to bottom in tiles of window rows,
  blended and written as they finish;
* ``naive``: the obvious alternative — read the whole scene, pad it, predict every window
  into full-size accumulators, write the map in one go (same model, weights and output).

A ``baseline`` subprocess (imports and model, no scene) gives the memory every method pays
anyway, so ``scene_rss_mb`` = peak RSS - baseline is what the scene costs. One JSON line
per (size, method), one ratio line per size (windowed / naive), one line comparing how
the scene memory of each method grows from the smallest to the largest scene, and one
showing that the windowed predictor's memory does not grow with the scene's height.

``--extents`` adds the shape test: thin scenes (`--thin` rows) from the first to the last
extent wide, and as tall, predicted in bands (``windowed``) and, for the widths, in
full-width strips (``strips``: one band as wide as the scene, as the predictor once
worked); it prints each peak RSS and how much the peak grows from the
narrowest to the widest (and shortest to tallest) scene.

The model is a ResUNet (the seed system's architecture) with small widths and random
weights built from experiments/resunet_sen1floods11.yaml, predicting from VV, RATIO and
MAGNITUDE (derived on the fly); ``--model conv`` swaps in a 3x3 conv for a quick run.

Each method runs `--repeats` times, alternating with the other; the fastest time and the
highest peak RSS are reported.

Usage: python benchmarks/predict.py [--sizes 2048 4096] [--model resunet|conv]
       [--widths 8 16 32 64] [--window 256] [--overlap 64] [--batch-size 8] [--threads 0]
       [--repeats 2] [--extents 2048 8192 32768 --thin 512] [--band-cols 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BANDS = ["VV", "RATIO", "MAGNITUDE"]


def write_scene(path: Path, size: int, seed: int = 0, height: int | None = None) -> None:
    """A `height` (default `size`) x `size` VV/VH scene in dB (water, speckle, a nodata corner)."""
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    height = height or size
    profile = dict(driver="GTiff", width=size, height=height, count=2, dtype="float32",
                   crs="EPSG:32631", transform=Affine(10, 0, 600000, 0, -10, 5000000),
                   nodata=float("nan"), tiled=True, blockxsize=256, blockysize=256)  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.set_band_description(1, "VV")
        ds.set_band_description(2, "VH")
        for r0 in range(0, height, 512):  # written in blocks: the parent stays small too
            rows = min(512, height - r0)
            yy = np.arange(r0, r0 + rows, dtype=np.float32)[:, None]
            xx = np.arange(size, dtype=np.float32)[None, :]
            water = np.sin(yy / 91.0) + np.cos(xx / 57.0) > 0.9
            block = rng.standard_normal((2, rows, size), dtype=np.float32)
            block[0] = np.where(water, -20.0, -8.0) + 1.5 * block[0]
            block[1] = block[0] - 7.0 + block[1]
            if r0 == 0:
                block[:, :64, :64] = np.nan
            ds.write(block, window=((r0, r0 + rows), (0, size)))


def build_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(predict_fn, normalize) for the benchmark model, on CPU."""
    import torch

    from floodlab.data.load.normalize import band_coefficients, normalize_with_params
    from floodlab.predict.predictor import TaskPredictFn

    if args.threads:
        torch.set_num_threads(args.threads)
    params = {
        "image": {
            "bands": BANDS,
            "coefficients": [band_coefficients(b, "sarkd_clip") for b in BANDS],
        }
    }

    def normalize(x: np.ndarray) -> np.ndarray:
        return normalize_with_params(x, params, "image")

    if args.model == "conv":
        torch.manual_seed(0)
        net = torch.nn.Conv2d(len(BANDS), 1, 3, padding=1).eval()

        def conv_fn(x: np.ndarray) -> dict[str, np.ndarray]:
            with torch.inference_mode():
                return {"prob": torch.sigmoid(net(torch.from_numpy(x))).numpy()}

        return conv_fn, normalize
    from floodlab.specs import load_spec
    from floodlab.tasks import build_task

    widths = "[" + ",".join(str(w) for w in args.widths) + "]"
    spec = load_spec(ROOT / "experiments" / "resunet_sen1floods11.yaml", [f"model.widths={widths}"])
    torch.manual_seed(0)
    return TaskPredictFn(build_task(spec), device="cpu"), normalize


def naive_predict(
    predict_fn: Any, normalize: Any, src: Path, out: Path, args: argparse.Namespace
) -> None:
    """Whole scene in memory: read all, pad, predict every window into full arrays, write."""
    import rasterio

    from floodlab.predict.blend import StripModel, window_weights
    from floodlab.predict.scene_io import OUTPUT_NODATA
    from floodlab.predict.windows import StripPlan, reflect_index

    with rasterio.open(src) as ds:
        raw = ds.read().astype(np.float32)  # (2, H, W)
        profile = ds.profile
    _, height, width = raw.shape
    plan = StripPlan.for_scene(height, width, args.window, args.overlap)
    y0, x0 = int(plan.row_origins[0]), int(plan.col_origins[0])
    rows = reflect_index(np.arange(y0, int(plan.row_origins[-1]) + args.window), height)
    cols = plan.strip_cols()
    model = StripModel(predict_fn, plan, BANDS, ["VV", "VH"], normalize, args.batch_size, ("prob",))
    image = model.model_input(raw[:, rows][:, :, cols])  # (3, Hp, Wp) padded, normalised
    acc = np.zeros(image.shape[1:], np.float32)
    weight = np.zeros_like(acc)
    w2d = window_weights(args.window, args.overlap)
    origins = [(int(y) - y0, int(x) - x0) for y in plan.row_origins for x in plan.col_origins]
    win = args.window
    for b in range(0, len(origins), args.batch_size):
        chunk = origins[b : b + args.batch_size]
        batch = np.stack([image[:, y : y + win, x : x + win] for y, x in chunk])
        prob = predict_fn(batch)["prob"][:, 0]
        for (y, x), p in zip(chunk, prob, strict=True):
            acc[y : y + win, x : x + win] += p * w2d
            weight[y : y + win, x : x + win] += w2d
    prob = (
        acc[-y0 : -y0 + height, -x0 : -x0 + width] / weight[-y0 : -y0 + height, -x0 : -x0 + width]
    )
    nodata = ~np.isfinite(raw).all(axis=0)
    bands = np.stack([prob, (prob >= 0.5).astype(np.float32)])
    bands[:, nodata] = OUTPUT_NODATA
    profile.update(count=2, nodata=OUTPUT_NODATA, compress="deflate", predictor=3, tiled=True)
    with rasterio.open(out, "w", **profile) as ds:
        ds.write(bands)


def child(args: argparse.Namespace) -> None:
    """Run one method in this (fresh) process; print its time and peak RSS as JSON."""
    from floodlab.predict.scene import predict_scene

    predict_fn, normalize = build_model(args)
    src, out = Path(args.src or "."), Path(args.out or ".")
    import floodlab.predict.scene as scene_mod

    if args.band_cols:
        scene_mod.BAND_COLS = args.band_cols
    if args.child == "strips":  # one band spanning the scene: full-width strips
        scene_mod.BAND_COLS = 2**31 - 1
    start = time.perf_counter()
    if args.child in ("windowed", "strips"):
        predict_scene(predict_fn, src, out, bands=BANDS, normalize=normalize, window=args.window,
                      overlap=args.overlap, batch_size=args.batch_size,
                      overwrite=True)  # fmt: skip  # repeats write the same temporary map
    elif args.child == "naive":
        naive_predict(predict_fn, normalize, src, out, args)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's own peak RSS (MB).

    ``VmHWM`` where Linux has it: ``ru_maxrss`` of a child started with vfork (as
    subprocess does) also counts the parent's peak before the exec, so a child would
    report at least what the benchmark's driver held when it started that child.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(
    method: str, args: argparse.Namespace, src: Path | None = None, out: Path | None = None
) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", method, "--model", args.model,
           "--window", str(args.window), "--overlap", str(args.overlap),
           "--batch-size", str(args.batch_size), "--threads", str(args.threads),
           "--band-cols", str(args.band_cols), "--widths", *map(str, args.widths)]  # fmt: skip
    if src is not None and out is not None:
        cmd += ["--src", str(src), "--out", str(out)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def shape_test(args: argparse.Namespace, base: float) -> None:
    """Peak RSS of thin scenes from the first to the last extent, wide and tall."""
    lo, hi = args.extents[0], args.extents[-1]
    peaks: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="floodlab-bench-") as tmp:
        for extent in args.extents:
            for axis in ("width", "height"):
                src = Path(tmp) / f"scene_{axis}_{extent}.tif"
                if axis == "width":
                    write_scene(src, extent, height=args.thin)
                else:
                    write_scene(src, args.thin, height=extent)
                for method in ("windowed", "strips") if axis == "width" else ("windowed",):
                    out = Path(tmp) / f"flood_{method}_{axis}_{extent}.tif"
                    r = run_child(method, args, src, out)
                    out.unlink()
                    peaks.setdefault((method, axis), []).append(r["peak_rss_mb"])
                    mpx = extent * args.thin / 1e6
                    print(json.dumps({"bench": "predict_shape", "method": method, "axis": axis,
                                      "extent": extent, "thin": args.thin,
                                      "seconds": round(r["seconds"], 2),
                                      "mpx_per_s": round(mpx / r["seconds"], 3),
                                      "peak_rss_mb": round(r["peak_rss_mb"], 1),
                                      "scene_rss_mb": round(r["peak_rss_mb"] - base, 1),
                                      "baseline_rss_mb": round(base, 1)}), flush=True)  # fmt: skip
                src.unlink()
    growth = {f"{m}_{a}": round(v[-1] / v[0], 3) for (m, a), v in peaks.items()}
    print(json.dumps({"bench": "predict_shape_growth", "extents": [lo, hi], "thin": args.thin,
                      "peak_rss_growth": growth, "goal": 1.10}))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    p.add_argument("--model", choices=["resunet", "conv"], default="resunet")
    p.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--repeats", type=int, default=2, help="runs per method (fastest is kept)")
    p.add_argument(
        "--extents",
        type=int,
        nargs="*",
        default=[],
        help="shape test: thin scenes this wide, and this tall",
    )
    p.add_argument("--thin", type=int, default=512, help="the shape test's short side")
    p.add_argument("--band-cols", type=int, default=0,
                   help="predict_scene's columns per band (0: its default, BAND_COLS)")  # fmt: skip
    p.add_argument("--child", choices=["windowed", "strips", "naive", "baseline"],
                   help=argparse.SUPPRESS)  # fmt: skip
    p.add_argument("--src", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    base = run_child("baseline", args)["peak_rss_mb"]
    if args.extents:
        shape_test(args, base)
        return
    scene_rss: dict[str, list[float]] = {"windowed": [], "naive": []}
    with tempfile.TemporaryDirectory(prefix="floodlab-bench-") as tmp:
        for size in args.sizes:
            src = Path(tmp) / f"scene_{size}.tif"
            write_scene(src, size)
            # Alternate the methods and keep each one's fastest run: on a shared machine the
            # load drifts, and alternating exposes both methods to the same drift.
            runs: dict[str, list[dict[str, float]]] = {"windowed": [], "naive": []}
            for _ in range(args.repeats):
                for method in ("windowed", "naive"):
                    out = Path(tmp) / f"flood_{method}_{size}.tif"
                    runs[method].append(run_child(method, args, src, out))
            res = {}
            for method, rs in runs.items():
                r = {"seconds": min(x["seconds"] for x in rs),
                     "peak_rss_mb": max(x["peak_rss_mb"] for x in rs)}  # fmt: skip
                mpx = size * size / 1e6
                res[method] = r
                scene_rss[method].append(r["peak_rss_mb"] - base)
                print(json.dumps({"bench": "predict", "method": method, "model": args.model,
                                  "size": size, "megapixels": round(mpx, 2),
                                  "seconds": round(r["seconds"], 2),
                                  "mpx_per_s": round(mpx / r["seconds"], 3),
                                  "peak_rss_mb": round(r["peak_rss_mb"], 1),
                                  "scene_rss_mb": round(r["peak_rss_mb"] - base, 1),
                                  "baseline_rss_mb": round(base, 1)}), flush=True)  # fmt: skip
            w, n = res["windowed"], res["naive"]
            print(json.dumps({"bench": "predict_ratio", "size": size, "model": args.model,
                              "speed_windowed_over_naive": round(n["seconds"] / w["seconds"], 3),
                              "peak_rss_windowed_over_naive": round(w["peak_rss_mb"] / n["peak_rss_mb"], 3),
                              "scene_rss_windowed_over_naive": round(
                                  (w["peak_rss_mb"] - base) / max(n["peak_rss_mb"] - base, 1e-6), 3)}),
                  flush=True)  # fmt: skip
            for f in Path(tmp).glob("*.tif"):
                f.unlink()
        # Height alone: scenes as wide as the smallest one, 4x and 8x as tall. Bands make
        # the windowed predictor's memory independent of the height, so this must stay flat.
        width, tall_rss = args.sizes[0], []
        for factor in (4, 8):
            tall = Path(tmp) / f"scene_tall_{factor}.tif"
            write_scene(tall, width, height=factor * width)
            t = run_child("windowed", args, tall, Path(tmp) / "flood_tall.tif")
            tall_rss.append(t["peak_rss_mb"] - base)
            tall.unlink()
            print(json.dumps({"bench": "predict", "method": "windowed", "model": args.model,
                              "size": f"{factor * width}x{width}",
                              "megapixels": round(factor * width * width / 1e6, 2),
                              "seconds": round(t["seconds"], 2),
                              "mpx_per_s": round(factor * width * width / 1e6 / t["seconds"], 3),
                              "peak_rss_mb": round(t["peak_rss_mb"], 1),
                              "scene_rss_mb": round(tall_rss[-1], 1)}), flush=True)  # fmt: skip
        print(json.dumps({"bench": "predict_height_growth", "method": "windowed",
                          "heights": [4 * width, 8 * width], "width": width, "pixels_ratio": 2.0,
                          "scene_rss_growth": round(tall_rss[1] / max(tall_rss[0], 1e-6), 3)}),
              flush=True)  # fmt: skip
    if len(args.sizes) > 1:
        growth = {m: round(v[-1] / max(v[0], 1e-6), 2) for m, v in scene_rss.items()}
        print(json.dumps({"bench": "predict_memory_growth", "sizes": [args.sizes[0], args.sizes[-1]],
                          "pixels_ratio": round((args.sizes[-1] / args.sizes[0]) ** 2, 2),
                          "windowed_scene_rss_growth": growth["windowed"],
                          "naive_scene_rss_growth": growth["naive"]}))  # fmt: skip


if __name__ == "__main__":
    main()
