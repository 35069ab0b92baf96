"""Convert a raw dataset layout into one chunked Zarr v3 store, chip-parallel through Dask.

The store is written into ``<out>.partial/`` and renamed to ``<out>`` only once every chip,
the statistics and the attributes are in place (root attribute ``complete: true``). Each
chip task marks its chip written as its last write, so an interrupted conversion resumes
with the chips not yet written; re-running on a complete store does nothing.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import numpy as np
from dask.callbacks import Callback
from zarr.codecs import BloscCodec

from floodlab.bands import DERIVED_BANDS
from floodlab.data.convert.chipwrite import (
    check_chip,
    chip_files,
    convert_chip,
    create_arrays,
    forget,
    schema_of,
    stop_error,
    write_chip,
    written_chips,
)
from floodlab.data.convert.finalise import finalise
from floodlab.data.convert.splits import split_plan
from floodlab.data.load.store import STORE_FORMAT, read_attrs
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.units import units_provenance
from floodlab.errors import DataError, FloodlabError, UnitsError
from floodlab.storage import ROOT_DOCUMENT, is_remote, join, local_path, read_bytes
from floodlab.writable import check_output

log = logging.getLogger(__name__)

# Defaults chosen with benchmarks/loader.py: random training patches read fastest from
# uncompressed chunks of one band and 256 x 256 pixels (a 256-px patch of a 512-px chip
# touches at most 4 chunks per band, and only the rows it needs are read). Blosc-LZ4
# roughly halves optical storage on real data but costs ~20-25% of the read speed.
DEFAULT_CHUNK = 256  # spatial chunk side in pixels
# Chips per batch of a conversion on a Ray cluster (the driver holds at most two batches).
RAY_BATCH_MAX = 64
DEFAULT_COMPRESSION = "none"
COMPRESSIONS = ("none", "lz4", "zstd")
Progress = Callable[[int, int], None]  # (chips done, chips total)


def compressors_for(name: str) -> Any:
    """Zarr v3 compressor list for a compression name (lz4/zstd via Blosc, or none)."""
    if name == "lz4":
        return [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]
    if name == "zstd":
        return [BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")]
    if name == "none":
        return None
    raise DataError(f"--compression {name}: choose one of {list(COMPRESSIONS)}")


def partial_path(out: str | Path) -> Path:
    """Where a conversion into `out` writes until it is complete."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def is_complete(path: str | Path) -> bool:
    """True if `path` (a folder, or a URL on object storage) holds a complete floodlab store."""
    if is_remote(path):
        raw = read_bytes(join(str(path), ROOT_DOCUMENT))  # StorageError if unreachable
        attrs = json.loads(raw).get("attributes", {}) if raw else {}
    else:
        attrs = read_attrs(path) if local_path(path).exists() else {}
    return bool(attrs.get("complete")) and attrs.get("floodlab_store") == STORE_FORMAT


def normalize_derived(derived: Sequence[str]) -> list[str]:
    """Upper-case, de-duplicate and check derived band names."""
    names = list(dict.fromkeys(d.strip().upper() for d in derived if d.strip()))
    unknown = [d for d in names if d not in DERIVED_BANDS]
    if unknown:
        raise DataError(f"--derive: unknown band(s) {unknown}; choose from {list(DERIVED_BANDS)}")
    return names


class _ChipProgress(Callback):
    """Dask callback that reports each finished chip task."""

    def __init__(self, done: int, total: int, progress: Progress | None):
        super().__init__()
        self.done, self.total, self.progress = done, total, progress

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if str(name).startswith("chip-"):
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total)


def _pool(scheduler: str, workers: int | None) -> Executor:
    """The executor of the chip tasks ("processes" start fresh interpreters: spawn)."""
    n = workers or os.cpu_count() or 1
    if scheduler == "threads":
        return ThreadPoolExecutor(n, thread_name_prefix="floodlab-convert")
    if scheduler == "processes":
        return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
    raise DataError(f"--scheduler {scheduler}: choose 'threads' or 'processes'")


def _on_ray(
    address: str,
    reader: SourceReader,
    refs: Sequence[ChipRef],
    todo: list[int],
    part: Path,
    schema: dict[str, Any],
    skip_bad: bool,
    progress: Progress | None,
    total: int,
) -> list[dict[str, Any]]:
    """Read and encode the `todo` chips on a Ray cluster; write them into `part` here.

    The chip tasks (read, validate, encode, derive: the costly part) run as a Dask graph on
    Ray's Dask scheduler (`ray.util.dask.ray_dask_get`), a batch of chips at a time; this
    process writes each batch into the partial store while the cluster works on the next.
    Writing stays in one place, so the store is as atomic and resumable as a local
    conversion (a chip counts once its record is written; an interrupted run resumes from
    the chips written) and may be a local staging folder bound for object storage. The
    driver holds at most two batches of encoded chips.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ray.util.dask import ray_dask_get

    from floodlab.cluster.ray_env import ensure_ray
    from floodlab.data.convert.chipwrite import EncodedChip, read_and_encode, store_chip

    cpus = int(ensure_ray(address).get("CPU", 1))
    size = min(RAY_BATCH_MAX, max(8, 2 * cpus))
    batches = [todo[k : k + size] for k in range(0, len(todo), size)]

    def compute(batch: list[int]) -> tuple[Any, ...]:
        tasks = [
            dask.delayed(read_and_encode, pure=False)(
                reader, refs[i], i, schema, skip_bad, dask_key_name=f"chip-{i}"
            )
            for i in batch
        ]
        try:
            return tuple(dask.compute(*tasks, scheduler=ray_dask_get))
        except Exception as e:  # a task's own error (a bad chip, the units), not Ray's
            cause = getattr(e, "cause", None)
            if isinstance(cause, FloodlabError):
                raise cause from None
            raise

    results: list[dict[str, Any]] = []
    done = total - len(todo)
    with ThreadPoolExecutor(1, thread_name_prefix="floodlab-convert-ray") as ahead:
        pending = ahead.submit(compute, batches[0]) if batches else None
        for k in range(len(batches)):
            assert pending is not None
            encoded = pending.result()
            pending = ahead.submit(compute, batches[k + 1]) if k + 1 < len(batches) else None
            for i, chip in encoded:
                if isinstance(chip, EncodedChip):
                    results.append(store_chip(str(part), i, chip, schema))
                else:
                    results.append(chip)
                done += 1
                if progress is not None:
                    progress(done, total)
    return results


def _read_probes(
    reader: SourceReader, refs: Sequence[ChipRef], skip_bad: bool, bad: dict[int, dict[str, Any]]
) -> list[tuple[int, Chip]]:
    """Read the first readable chip of every kind (set of modality files) of the source."""
    kinds: dict[tuple[str, ...], list[int]] = {}
    for i, ref in enumerate(refs):
        kinds.setdefault(tuple(sorted(ref.files)), []).append(i)
    probes: list[tuple[int, Chip]] = []
    shape: tuple[int, int] | None = None  # the first readable chip sets the store's size
    for indices in kinds.values():
        for i in indices:
            try:
                chip = reader.read(refs[i])
                shape = check_chip(chip, shape)
            except UnitsError:
                raise  # the whole source's units, not one bad chip: never skipped
            except DataError as e:
                if not skip_bad:
                    raise stop_error(refs[i], e) from None
                log.warning("skipping chip %s: %s", refs[i].id, e)
                bad[i] = {"id": refs[i].id, "files": chip_files(refs[i]), "reason": str(e)}
                continue
            probes.append((i, chip))
            break
    if not probes:
        raise DataError(
            f"none of the {len(refs)} chips could be read ({len(bad)} skipped as bad); "
            "see the skipped chips' reasons above"
        )
    return probes


def _announce_splits(info: dict[str, Any], n: int, src: Path, expected: str) -> None:
    """Log (warning) chips whose split was made up here rather than read from the source."""
    random = info["chips"]["random"]
    if not random:
        return
    where = f"no split files in {src} (expected {expected or 'none for this dataset'})"
    if info["files"]:
        where = f"{random} of {n} chips are in none of the split files"
    log.warning(
        "%s: those chips get a seeded random grouped 80/10/10 split (seed %s): %s",
        where,
        info["seed"],
        info["random_split_counts"],
    )


def _options(
    dataset: str,
    src: Path,
    chunk: int,
    derived: list[str],
    reader_options: dict[str, Any],
    seed: int,
    compression: str,
) -> dict[str, Any]:
    options = {
        "dataset": dataset,
        "source": str(src.resolve()),
        "chunk": int(chunk),
        "derived": derived,
        "reader_options": {k: reader_options[k] for k in sorted(reader_options)},
        "seed": int(seed),
        "compression": compression,
    }
    # JSON round trip: the options are compared with the partial store's attributes on
    # resume, where tuples come back as lists.
    return dict(json.loads(json.dumps(options, default=str)))


def convert(
    dataset: str,
    src: str | Path,
    out: str | Path,
    *,
    chunk: int = DEFAULT_CHUNK,
    derived: Sequence[str] = (),
    skip_bad: bool = False,
    workers: int | None = None,
    scheduler: str = "threads",
    progress: Progress | None = None,
    reader_options: dict[str, Any] | None = None,
    reader: SourceReader | None = None,
    seed: int = 0,
    compression: str = DEFAULT_COMPRESSION,
    address: str | None = None,
) -> Path:
    """Convert the raw dataset at `src` into the Zarr store `out` (see floodlab.data.load.store).

    Args:
        dataset: a registered dataset name (`floodlab.data.registry.dataset_names()`).
        src: the raw dataset folder.
        out: the store to create (a folder, conventionally ``*.zarr``).
        chunk: spatial chunk side in pixels (chips are one chunk along N either way).
        derived: derived bands to store (RATIO, MAGNITUDE, NDVI, NDWI).
        skip_bad: leave unreadable chips out (listed in provenance) instead of stopping.
        workers: parallel chip tasks (None = all cores).
        scheduler: Dask local scheduler, "threads" (default: fastest here, since GDAL,
            numpy and Blosc release the GIL; see benchmarks/loader.py) or "processes".
        progress: called with (chips done, chips total) as chips finish.
        reader_options: keyword options of the source reader (e.g. season="winter").
        reader: a ready reader to use instead of looking up `dataset`.
        seed: seed of the grouped 80/10/10 split for chips without an official split.
        compression: "none" (default, fastest random reads), "lz4" or "zstd" (Blosc; less
            disk for optical bands).
        address: a Ray cluster (``auto``, ``host:port``, ``ray://...``): chips are read and
            encoded there by Ray's Dask scheduler, and written here (see `_on_ray`); `src`
            must then be readable at the same path on every node (a shared mount).

    Returns:
        The path of the complete store.

    Raises:
        DatasetNotFoundError: the source folder or layout is missing.
        DataError: an unreadable chip (without skip_bad), an empty source, chips of
            different sizes, or an existing `out` that is not a complete store.
        OutputPathError: `out` cannot be created (checked before any chip is read).
        ReaderOptionError: a reader option the reader does not know or cannot use.
    """
    out, src = Path(out), Path(src)
    reader_options = dict(reader_options or {})
    derived = normalize_derived(derived)
    compressors = compressors_for(compression)
    if chunk < 16:
        raise DataError(f"--chunk {chunk}: the spatial chunk must be at least 16 pixels")
    # Before any chip is read: never into the source, never over something else.
    check_output(out, option="--out", inputs=[src], overwrite=True, kind="folder")
    if out.exists():
        if is_complete(out):
            log.info("%s is already a complete store; nothing to do", out)
            return out
        raise DataError(
            f"{out} exists but is not a complete floodlab store; delete it or choose another "
            "--out (an interrupted conversion lives in <out>.partial and resumes by itself)"
        )
    options = _options(dataset, src, chunk, derived, reader_options, seed, compression)
    if reader is None:
        from floodlab.data.sources import READERS, get_reader

        units = reader_options.get("units")
        if units is not None and dataset in READERS and "s1" not in READERS[dataset].bands:
            raise UnitsError(
                f"--units {units}: {dataset} carries no SAR bands (only "
                f"{', '.join(sorted(READERS[dataset].bands))}), so there is nothing to "
                "convert to dB; drop --units."
            )
        reader = get_reader(dataset, src, **reader_options)
    t0 = time.perf_counter()
    refs = reader.list_chips()
    if not refs:
        raise DataError(
            f"{src}: no {dataset} chips found; check that the folder holds the {dataset} "
            "layout (see datasets/<name>/README.md) and any reader options"
        )
    n = len(refs)
    part = partial_path(out)
    bad: dict[int, dict[str, Any]] = {}
    attrs = read_attrs(part) if part.exists() else {}
    if attrs.get("complete"):
        os.replace(part, out)  # finished before a crash between the last write and the rename
        return out
    if attrs.get("options") == options and attrs.get("ids") == [r.id for r in refs]:
        schema = attrs["schema"]
        provenance = dict(attrs.get("provenance_extra", {}))
        written = written_chips(part, n)
        log.info("resuming %s: %d of %d chips already written", part, int(written.sum()), n)
    else:
        if part.exists():
            raise DataError(
                f"{part} holds an interrupted conversion with other options or chips "
                f"({attrs.get('options')}); delete it or re-run with the same options"
            )
        splits, split_info = split_plan(refs, seed, reader.split_files)
        _announce_splits(split_info, len(refs), src, reader.split_layout)
        probes = _read_probes(reader, refs, skip_bad, bad)
        schema = schema_of([c for _, c in probes], derived)
        provenance = {"splits": {**split_info, "expected": reader.split_layout}}
        if "s1" in schema["modalities"]:
            provenance["sar_units"] = units_provenance(
                reader.options.get("units") or reader.sar_units
            )
        root = create_arrays(part, schema, refs, splits, chunk, compressors)
        root.attrs.update(
            {
                "floodlab_store": STORE_FORMAT,
                "complete": False,
                "options": options,
                "schema": schema,
                "ids": [r.id for r in refs],
                "provenance_extra": provenance,
            }
        )
        for i, chip in probes:
            write_chip(str(part), i, chip, schema)
        written = np.zeros(n, dtype=bool)
        written[[i for i, _ in probes]] = True
    todo = [i for i in range(n) if not written[i] and i not in bad]
    done0 = n - len(todo)
    if progress is not None:
        progress(done0, n)
    tasks = [
        dask.delayed(convert_chip, pure=False)(
            reader, refs[i], str(part), i, schema, skip_bad, dask_key_name=f"chip-{i}"
        )
        for i in todo
    ]
    if address is not None:
        try:
            results = _on_ray(address, reader, refs, todo, part, schema, skip_bad, progress, n)
        finally:
            forget(part)
        tasks = []
    else:
        results = []
    # Our own pool, so that on failure we wait for chips still in flight before returning:
    # nothing may write into the partial store after convert() has raised.
    pool = _pool(scheduler, workers) if tasks else None
    try:
        if pool is not None:
            with _ChipProgress(done0, n, progress):
                results = list(dask.compute(*tasks, scheduler=scheduler, pool=pool))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        forget(part)
    for r in results:
        if r.get("bad"):
            bad[r["i"]] = {"id": r["id"], "files": r["files"], "reason": r["bad"]}
    finalise(part, schema, refs, bad, options, workers, provenance)
    os.replace(part, out)
    log.info(
        "converted %d chips (%d skipped) into %s in %.1fs",
        n - len(bad),
        len(bad),
        out,
        time.perf_counter() - t0,
    )
    return out
