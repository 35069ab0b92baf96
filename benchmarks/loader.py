"""Loader benchmark: random-access training patches/s from the Zarr store vs. per-sample
GeoTIFF windowed reads vs. an in-memory numpy copy, and conversion chips/s by worker count.

All readers serve the same random (chip, window) sequence and feed the same sample pipeline
(normalise, flip/rotate, torch tensors), so the ratios isolate the storage. Codecs are
paired: the store and the GeoTIFFs are compared both uncompressed ("zarr" vs
"geotiff_none") and both compressed with zstd ("zarr_zstd" vs "geotiff_zstd"; Blosc-zstd
level 3 vs GDAL's ZSTD level 3 with the same 256-pixel tiles as the source), beside the
source files as shipped ("geotiff_deflate"). Other readers: "zarr_python" (the uncompressed
store through zarr-python's API), "dask" (through dask.array, one compute per sample),
"memory" (every chip decoded in RAM: the ceiling). Repeats are interleaved across readers
so a busy machine slows them alike; the best repeat counts.

Two modes: one process (`loader_random_patches`), and a torch DataLoader with
`--loader-workers` worker processes (`loader_dataloader_workers`), the way training reads.
Prints one JSON line per measurement:

    .venv/bin/python benchmarks/loader.py [--chips 32] [--size 256] [--patch 128]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from floodlab.bands import S1_BANDS, S2_BANDS
from floodlab.data.convert.pipeline import convert
from floodlab.data.load.normalize import normalize
from floodlab.data.load.store import open_store
from floodlab.data.load.transforms import augment_spatial, crop_for
from floodlab.data.sources import get_reader
from floodlab.data.synth import write_synthetic

IMAGE = ["VV", "VH"]  # SAR input
OPTICAL = ["B4", "B3", "B2", "B8"]  # optical prior / target bands
# (bands (C, h, w) float32 physical with NaN nodata, label (h, w) int8) for chip, window.
Reader = Callable[[int, tuple[int, int, int, int]], tuple[np.ndarray, np.ndarray]]


def zarr_reader(store_path: Path | str, direct: bool = True) -> Reader:
    """Windowed reads from the converted store (direct chunk reads, or zarr-python's API)."""
    store = open_store(store_path, direct_reads=direct)
    bands = IMAGE + OPTICAL
    plan = store.plan_bands(bands)
    request: dict[str, list[int] | None] = {**plan, "label": None}

    def read(i: int, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        raw = store.read_raw(i, request, window)
        return store.bands_from_raw(raw, bands, plan), raw["label"]

    return read


def dask_reader(store_path: Path) -> Reader:
    """Windowed reads through dask.array over the store's arrays (one compute per sample)."""
    import dask
    import dask.array as da

    store = open_store(store_path)
    bands = IMAGE + OPTICAL
    names = [*store.plan_bands(bands), "label"]  # whole arrays: every channel
    arrays = {n: da.from_zarr(store.array(n)) for n in names}

    def read(i: int, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        y0, x0, h, w = window
        ys, xs = slice(y0, y0 + h), slice(x0, x0 + w)
        parts = [a[i, :, ys, xs] if a.ndim == 4 else a[i, ys, xs] for a in arrays.values()]
        raw = dict(zip(names, dask.compute(*parts, scheduler="sync"), strict=True))
        return store.bands_from_raw(raw, bands), raw["label"]

    return read


def geotiff_reader(src: Path) -> Reader:
    """Per-sample windowed reads of the source GeoTIFFs (open, read window, close)."""
    refs = get_reader("sen1floods11", src).list_chips()
    s2_idx = [S2_BANDS.index(b) + 1 for b in OPTICAL]

    def read(i: int, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        y0, x0, h, w = window
        win = Window(x0, y0, w, h)
        files = refs[i].files
        with rasterio.open(files["s1"][0]) as f:
            s1 = f.read([S1_BANDS.index(b) + 1 for b in IMAGE], window=win)
        with rasterio.open(files["s2"][0]) as f:
            s2 = f.read(s2_idx, window=win).astype(np.float32)
        s2[s2 == 0] = np.nan
        with rasterio.open(files["label"][0]) as f:
            label = f.read(1, window=win).astype(np.int8)
        return np.concatenate([s1, s2]), label

    return read


def recode_tree(src: Path, dst: Path, compress: str | None) -> Path:
    """A copy of the raw GeoTIFF tree `src` with every file re-encoded (None: uncompressed),
    tiling kept; the other files copied as they are."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() not in (".tif", ".tiff"):
            shutil.copy2(path, target)
            continue
        with rasterio.open(path) as f:
            profile = dict(f.profile)
            data = f.read()
            descriptions = f.descriptions
        profile.pop("compress", None)
        profile.pop("predictor", None)
        if compress is not None:
            profile.update(compress=compress, zstd_level=3)
        with rasterio.open(target, "w", **profile) as out:
            out.write(data)
            for k, d in enumerate(descriptions, start=1):
                if d:
                    out.set_band_description(k, d)
    return dst


class DrawDataset(torch.utils.data.Dataset):
    """The benchmark's draws as a Dataset: one sample per (chip, window), read by `read`."""

    def __init__(self, read: Reader, draws: list[tuple[int, Any]], stats: dict[str, Any]):
        self.read, self.draws, self.stats = read, draws, stats

    def __len__(self) -> int:
        return len(self.draws)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, crop = self.draws[k]
        return make_sample(*self.read(i, crop.window), np.random.default_rng(k), self.stats)


def dataloader_per_s(
    readers: dict[str, Reader],
    draws: list[tuple[int, Any]],
    stats: dict[str, Any],
    workers: int,
    repeats: int,
) -> dict[str, float]:
    """Best-of-`repeats` patches/s through a DataLoader with `workers` processes (forked
    per pass, so start-up is included, as in an epoch) and batches of 8."""
    best = dict.fromkeys(readers, 0.0)
    for _ in range(repeats):
        for name, read in readers.items():
            loader = torch.utils.data.DataLoader(
                DrawDataset(read, draws, stats), batch_size=8, num_workers=workers
            )
            t0 = time.perf_counter()
            for _batch in loader:
                pass
            best[name] = max(best[name], len(draws) / (time.perf_counter() - t0))
    return best


def memory_reader(store_path: Path) -> Reader:
    """The ceiling: every chip already decoded in RAM as numpy arrays."""
    store = open_store(store_path)
    n = len(store)
    bands = np.stack([store.read_bands(i, IMAGE + OPTICAL) for i in range(n)])  # (N, C, H, W)
    labels = np.asarray(store.array("label")[:])  # (N, H, W)

    def read(i: int, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        y0, x0, h, w = window
        return bands[i, :, y0 : y0 + h, x0 : x0 + w].copy(), labels[i, y0 : y0 + h, x0 : x0 + w]

    return read


def make_sample(
    bands: np.ndarray, label: np.ndarray, rng: np.random.Generator, stats: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """The shared post-read pipeline: normalise, augment, tensors (as FloodDataset does)."""
    image = normalize(bands[: len(IMAGE)], IMAGE, "zscore", stats)
    optical = normalize(bands[len(IMAGE) :], OPTICAL, "clip4000")
    valid = (label >= 0) & np.all(np.isfinite(bands[: len(IMAGE)]), axis=0)
    mask = ((label == 1) & valid).astype(np.float32)
    out = augment_spatial(
        {"image": image, "optical": optical, "mask": mask, "valid": valid}, rng, True, True
    )
    return {k: torch.from_numpy(v) for k, v in out.items()}


def patches_per_s(
    readers: dict[str, Reader], draws: list[tuple[int, Any]], stats: dict[str, Any], repeats: int
) -> dict[str, float]:
    """Best-of-`repeats` throughput of the pipeline per reader over the same draws."""
    best = dict.fromkeys(readers, 0.0)
    for _ in range(repeats):
        for name, read in readers.items():
            rng = np.random.default_rng(0)
            t0 = time.perf_counter()
            for i, crop in draws:
                make_sample(*read(i, crop.window), rng, stats)
            best[name] = max(best[name], len(draws) / (time.perf_counter() - t0))
    return best


def conversion_rate(src: Path, out: Path, workers: int, scheduler: str) -> float:
    """Chips/s of a full conversion (statistics included) with `workers` Dask workers."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    store = convert("sen1floods11", src, out, workers=workers, scheduler=scheduler)
    dt = time.perf_counter() - t0
    return len(open_store(store)) / dt


def main() -> None:
    """Run every measurement and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chips", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=None, help="spatial chunk (default: store's)")
    ap.add_argument("--loader-workers", type=int, default=2, help="DataLoader processes")
    ap.add_argument("--skip-conversion", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="floodlab-bench-") as tmp:
        root = write_synthetic("sen1floods11", Path(tmp) / "raw", args.chips, args.size, seed=0)
        store_path, zstd_path = Path(tmp) / "s.zarr", Path(tmp) / "s-zstd.zarr"
        kw: dict[str, Any] = {"chunk": args.chunk} if args.chunk else {}
        convert("sen1floods11", root, store_path, compression="none", **kw)
        convert("sen1floods11", root, zstd_path, compression="zstd", **kw)
        plain = recode_tree(root, Path(tmp) / "raw-none", None)
        zstd = recode_tree(root, Path(tmp) / "raw-zstd", "zstd")
        store = open_store(store_path)
        stats = {b: store.stats(b) for b in IMAGE}
        rng = np.random.default_rng(0)
        n = len(store)
        draws = [
            (int(rng.integers(n)), crop_for(store.chip_shape, args.patch, rng))
            for _ in range(args.samples)
        ]
        readers = {
            "zarr": zarr_reader(store_path),
            "geotiff_none": geotiff_reader(plain),
            "zarr_zstd": zarr_reader(zstd_path),
            "geotiff_zstd": geotiff_reader(zstd),
            "geotiff_deflate": geotiff_reader(root),
            "zarr_python": zarr_reader(store_path, direct=False),
            "dask": dask_reader(store_path),
            "memory": memory_reader(store_path),
        }
        rates = patches_per_s(readers, draws, stats, args.repeats)
        chunks = list(store.array("s1").chunks)
        common = {"chips": n, "chip_size": args.size, "patch": args.patch, "chunks_s1": chunks}
        print(
            json.dumps(
                {
                    "benchmark": "loader_random_patches",
                    **common,
                    "processes": 1,
                    "patches_per_s": {k: round(v, 1) for k, v in rates.items()},
                    "uncompressed_zarr_vs_geotiff": round(rates["zarr"] / rates["geotiff_none"], 2),
                    "zstd_zarr_vs_geotiff": round(rates["zarr_zstd"] / rates["geotiff_zstd"], 2),
                    "zarr_vs_geotiff_as_shipped": round(
                        rates["zarr"] / rates["geotiff_deflate"], 2
                    ),
                    "zarr_vs_memory": round(rates["zarr"] / rates["memory"], 3),
                    "zarr_vs_zarr_python": round(rates["zarr"] / rates["zarr_python"], 2),
                    "zarr_vs_dask": round(rates["zarr"] / rates["dask"], 2),
                }
            )
        )
        paired = {k: readers[k] for k in ("zarr", "geotiff_none", "zarr_zstd", "geotiff_zstd")}
        workers = args.loader_workers
        rates = dataloader_per_s(paired, draws, stats, workers, args.repeats)
        print(
            json.dumps(
                {
                    "benchmark": "loader_dataloader_workers",
                    **common,
                    "loader_workers": workers,
                    "batch_size": 8,
                    "patches_per_s": {k: round(v, 1) for k, v in rates.items()},
                    "uncompressed_zarr_vs_geotiff": round(rates["zarr"] / rates["geotiff_none"], 2),
                    "zstd_zarr_vs_geotiff": round(rates["zarr_zstd"] / rates["geotiff_zstd"], 2),
                }
            )
        )
        if args.skip_conversion:
            return
        conv: dict[str, float] = {}
        for scheduler in ("threads", "processes"):
            for workers in sorted({1, cores}):
                out = Path(tmp) / f"c-{scheduler}-{workers}.zarr"
                conv[f"{scheduler}_{workers}"] = conversion_rate(root, out, workers, scheduler)
        print(
            json.dumps(
                {
                    "benchmark": "convert_chips_per_s",
                    "chips": n,
                    "chip_size": args.size,
                    "cores": cores,
                    "chips_per_s": {k: round(v, 2) for k, v in conv.items()},
                    "threads_all_vs_1": round(conv[f"threads_{cores}"] / conv["threads_1"], 2),
                    "processes_vs_threads_all": round(
                        conv[f"processes_{cores}"] / conv[f"threads_{cores}"], 2
                    ),
                }
            )
        )


if __name__ == "__main__":
    main()
