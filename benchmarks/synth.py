"""Synthetic-source benchmark: writing a raw layout vs. reading it back with its reader.

Writes the quickstart-sized Sen1Floods11 tree (40 hand + 20 weak chips of 128 px by
default) and reads every chip back through the reader, in one process; prints one JSON
line with chips/s of both and the write/read time ratio (how much generation costs
relative to the conversion's own reading):

    .venv/bin/python benchmarks/synth.py [--dataset sen1floods11] [--chips 40] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from floodlab.data.sources import get_reader
from floodlab.data.synth import synthetic_chip_count, write_synthetic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="sen1floods11")
    ap.add_argument("--chips", type=int, default=40)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="floodlab-bench-synth-"))
    try:
        start = time.perf_counter()
        root = write_synthetic(args.dataset, tmp / "raw", chips=args.chips, size=args.size, seed=0)
        t_write = time.perf_counter() - start
        options = {"labels": ("hand", "weak")} if args.dataset == "sen1floods11" else {}
        reader = get_reader(args.dataset, root, **options)
        start = time.perf_counter()
        refs = reader.list_chips()
        for ref in refs:
            reader.read(ref)
        t_read = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = synthetic_chip_count(args.dataset, args.chips)
    print(
        json.dumps(
            {
                "benchmark": "synth_write_vs_read",
                "dataset": args.dataset,
                "chips": n,
                "size": args.size,
                "write_s": round(t_write, 2),
                "read_s": round(t_read, 2),
                "write_chips_per_s": round(n / t_write, 1),
                "read_chips_per_s": round(len(refs) / t_read, 1),
                "write_over_read": round(t_write / t_read, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
