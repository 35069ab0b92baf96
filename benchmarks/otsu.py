"""Otsu benchmark: the 256-bin histogram threshold vs. the exact threshold over sorted values.

Both run on the same synthetic VV scenes (dB with speckle, NaN nodata) in one process;
prints one JSON line with the time ratio and the largest threshold difference in dB:

    .venv/bin/python benchmarks/otsu.py [--size 512] [--scenes 8]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from floodlab.data.otsu import otsu_threshold
from floodlab.data.synth.scene import make_scene


def exact_otsu(values: np.ndarray) -> float:
    """Otsu over every distinct cut of the sorted finite values (no binning)."""
    v = np.sort(values[np.isfinite(values)].astype(np.float64))
    n = v.size
    csum = np.cumsum(v)
    k = np.arange(1, n)  # lower class = first k values
    w0 = k / n
    m0 = csum[:-1] / k
    m1 = (csum[-1] - csum[:-1]) / (n - k)
    between = w0 * (1 - w0) * (m0 - m1) ** 2
    i = int(np.argmax(between))
    return float((v[i] + v[i + 1]) / 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--scenes", type=int, default=8)
    args = ap.parse_args()
    scenes = [make_scene(np.random.default_rng(i), args.size).sar_db[0] for i in range(args.scenes)]
    timings = {}
    results = {}
    for name, fn in (("histogram", otsu_threshold), ("exact_sorted", exact_otsu)):
        start = time.perf_counter()
        results[name] = [fn(vv) for vv in scenes]
        timings[name] = (time.perf_counter() - start) / len(scenes)
    diff = max(
        abs(a - b) for a, b in zip(results["histogram"], results["exact_sorted"], strict=True)
    )
    print(
        json.dumps(
            {
                "benchmark": "otsu_threshold",
                "pixels": args.size * args.size,
                "histogram_ms": round(1e3 * timings["histogram"], 2),
                "exact_sorted_ms": round(1e3 * timings["exact_sorted"], 2),
                "speedup_vs_exact": round(timings["exact_sorted"] / timings["histogram"], 2),
                "max_threshold_diff_db": round(diff, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
