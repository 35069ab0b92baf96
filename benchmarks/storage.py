"""Storage benchmark: training patches/s from a store on S3 vs the same store on local disk,
and the time to write and read one checkpoint both ways.

The S3 side is an S3-protocol server (moto in server mode, in its own process) on
127.0.0.1, started here: it
measures the object-storage path (fsspec/s3fs requests through zarr, one request per chunk,
no direct chunk-file reads) without a network, so a real bucket adds its round-trip latency
on top; the ratio is the cost of the protocol and the client, not of the network.

Every reader serves the same random (chip, window) sequence through the same sample pipeline
as `benchmarks/loader.py` (normalise, flip/rotate, tensors) in one process; repeats are
interleaved and the best counts. Readers: "local" (floodlab's direct chunk-file reads),
"local_zarr" (the same folder through zarr-python, the path a remote store takes), "s3".
The checkpoint is a FLoRA quickstart model's state dict saved with torch.save: local is an
atomic write (temporary file, fsync, rename) and a torch.load; S3 is one PUT and one GET.
Prints one JSON line per measurement:

    .venv/bin/python benchmarks/storage.py [--chips 32] [--size 256] [--patch 128]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from floodlab.data.convert.pipeline import convert
from floodlab.data.convert.remote import convert_to
from floodlab.data.load.store import open_store
from floodlab.data.load.transforms import crop_for
from floodlab.data.synth import write_synthetic
from floodlab.io import atomic_path
from loader import IMAGE, patches_per_s, zarr_reader  # this folder is the script's path

BUCKET = "floodlab-bench"
ROOT = Path(__file__).resolve().parents[1]


def start_s3() -> subprocess.Popen[bytes]:
    """moto's S3 server in its own process on 127.0.0.1 (a free port), the AWS environment
    pointed at it. Its own process: a server thread inside this one would share the GIL
    with the reader it serves."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    import s3fs

    fs = s3fs.S3FileSystem()
    for _ in range(100):  # until it answers (a few seconds at most)
        try:
            fs.mkdir(BUCKET)
            return server
        except Exception:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"the S3 server at {endpoint} did not start")


def checkpoint_bytes() -> bytes:
    """A FLoRA quickstart model's state dict as torch.save writes it."""
    from floodlab.specs import load_spec
    from floodlab.tasks.registry import build_model

    spec = load_spec(ROOT / "experiments" / "quickstart.yaml")
    buf = io.BytesIO()
    torch.save(build_model(spec.model).state_dict(), buf)
    return buf.getvalue()


def checkpoint_times(payload: bytes, folder: Path, url: str, repeats: int) -> dict[str, float]:
    """Best seconds to write and read `payload` as a checkpoint, locally and on S3."""
    import s3fs

    fs = s3fs.S3FileSystem()
    best = {"local_write": 1e9, "local_read": 1e9, "s3_write": 1e9, "s3_read": 1e9}
    target = folder / "checkpoint.pt"
    key = f"{url.removeprefix('s3://')}/checkpoint.pt"
    for _ in range(repeats):
        t0 = time.perf_counter()
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        best["local_write"] = min(best["local_write"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        torch.load(target, map_location="cpu", weights_only=True)
        best["local_read"] = min(best["local_read"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        fs.pipe_file(key, payload)
        best["s3_write"] = min(best["s3_write"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        torch.load(io.BytesIO(fs.cat_file(key)), map_location="cpu", weights_only=True)
        best["s3_read"] = min(best["s3_read"], time.perf_counter() - t0)
    return best


def main() -> None:
    """Run every measurement and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chips", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    server = start_s3()
    try:
        with tempfile.TemporaryDirectory(prefix="floodlab-bench-") as tmp:
            root = write_synthetic("sen1floods11", Path(tmp) / "raw", args.chips, args.size, 0)
            local = convert("sen1floods11", root, Path(tmp) / "s.zarr")
            url = f"s3://{BUCKET}/stores/s.zarr"
            t0 = time.perf_counter()
            convert_to("sen1floods11", root, url)
            to_s3 = time.perf_counter() - t0
            t0 = time.perf_counter()
            convert("sen1floods11", root, Path(tmp) / "again.zarr")
            to_disk = time.perf_counter() - t0
            store = open_store(local)
            stats = {b: store.stats(b) for b in IMAGE}
            rng = np.random.default_rng(0)
            draws = [
                (int(rng.integers(len(store))), crop_for(store.chip_shape, args.patch, rng))
                for _ in range(args.samples)
            ]
            readers = {
                "local": zarr_reader(local),
                "local_zarr": zarr_reader(local, direct=False),
                "s3": zarr_reader(url),
            }
            rates = patches_per_s(readers, draws, stats, args.repeats)
            print(
                json.dumps(
                    {
                        "benchmark": "storage_random_patches",
                        "chips": len(store),
                        "chip_size": args.size,
                        "patch": args.patch,
                        "processes": 1,
                        "server": "moto S3 server on 127.0.0.1",
                        "patches_per_s": {k: round(v, 1) for k, v in rates.items()},
                        "s3_vs_local": round(rates["s3"] / rates["local"], 3),
                        "s3_vs_local_zarr": round(rates["s3"] / rates["local_zarr"], 3),
                        "convert_s": {"s3": round(to_s3, 2), "local": round(to_disk, 2)},
                        "convert_s3_vs_local": round(to_s3 / to_disk, 2),
                    }
                )
            )
            payload = checkpoint_bytes()
            times = checkpoint_times(payload, Path(tmp), f"s3://{BUCKET}/ckpt", args.repeats)
            print(
                json.dumps(
                    {
                        "benchmark": "storage_checkpoint",
                        "megabytes": round(len(payload) / 1e6, 2),
                        "seconds": {k: round(v, 4) for k, v in times.items()},
                        "s3_vs_local_write": round(times["s3_write"] / times["local_write"], 2),
                        "s3_vs_local_read": round(times["s3_read"] / times["local_read"], 2),
                    }
                )
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
