"""Finishing a conversion: per-chip records to arrays, statistics, attributes, `complete`."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from floodlab import __version__
from floodlab.data.chunks import ChunkReader
from floodlab.data.convert.chipwrite import (
    PROGRESS,
    fill_value,
    read_progress,
    written_chips,
)
from floodlab.data.convert.stats import band_statistics, class_balance
from floodlab.data.load.store import IMAGE_MODALITIES, SKIPPED_SPLIT, STORE_FORMAT, strings
from floodlab.data.sources.base import ChipRef
from floodlab.errors import DataError

log = logging.getLogger(__name__)

CONVERTER_VERSION = "1.0"
# Label-like arrays and the class values counted for the class balance.
BALANCE_CLASSES: dict[str, tuple[int, ...]] = {
    "label": (-1, 0, 1),
    "label_weak": (-1, 0, 1),
    "cloud": (0, 1, 2, 3, 255),
}


class ChipLoader:
    """Reads whole chips of one array of the partial store (picklable, opened lazily)."""

    def __init__(self, store: Path, name: str, nodata: Any = None, physical: bool = False):
        self.store, self.name, self.nodata, self.physical = store, name, nodata, physical
        self._fast: ChunkReader | None = None
        self._opened = False

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fast": None, "_opened": False}

    def __call__(self, i: int) -> np.ndarray:
        """Chip i as stored, or as float32 physical values with NaN at nodata."""
        if not self._opened:
            self._fast, self._opened = ChunkReader.open(self.store / self.name), True
        if self._fast is not None:
            raw = self._fast.read((i,) + (slice(None),) * (len(self._fast.shape) - 1))
        else:
            raw = np.asarray(zarr.open_array(str(self.store / self.name), mode="r")[i])
        if not self.physical:
            return raw
        x = raw.astype(np.float32)
        if self.nodata == 0:
            x[raw == 0] = np.nan
        return x


def finalise(
    part: Path,
    schema: dict[str, Any],
    refs: Sequence[ChipRef],
    bad: dict[int, dict[str, Any]],
    options: dict[str, Any],
    workers: int | None,
    provenance_extra: dict[str, Any] | None = None,
) -> None:
    """Consolidate per-chip bookkeeping, compute statistics, write attrs, mark complete.

    `provenance_extra` joins the store's provenance: how the splits were made ("splits",
    see `floodlab.data.convert.splits.split_plan`) and the SAR input units ("sar_units").
    """
    root = zarr.open_group(str(part), mode="r+")
    split_array = root["split"]
    assert isinstance(split_array, zarr.Array)
    n = len(refs)
    written = written_chips(part, n)
    missing = [refs[int(i)].id for i in np.flatnonzero(~written) if int(i) not in bad]
    if missing:
        raise DataError(f"{part}: chips {missing[:5]} were neither written nor skipped")
    splits = strings(split_array).astype(object)
    splits[~written] = SKIPPED_SPLIT
    split_array[:] = splits
    splits = splits.astype(str)
    # Per-chip records become small single-chunk arrays (one read when a store opens).
    columns = [m for m in schema["modalities"] if m != "derived"]
    records = [read_progress(part, i) if written[i] else None for i in range(n)]
    crs = np.asarray([r["crs"] if r else "" for r in records], dtype=object)
    sources = np.asarray([r["label_source"] if r else "" for r in records], dtype=object)
    transform = np.asarray(
        [r["transform"] if r else [np.nan] * 6 for r in records], dtype=np.float64
    ).reshape(n, 6)
    present = np.asarray(
        [r["present"] if r else [False] * len(columns) for r in records], dtype=bool
    ).reshape(n, len(columns))
    for name, values in (("crs", crs), ("label_source", sources)):
        arr = root.create_array(name, shape=(n,), chunks=(n,), dtype=str, fill_value="")
        arr[:] = values
    root.create_array("transform", shape=(n, 6), chunks=(n, 6), dtype="float64")[:] = transform
    root.create_array("present", shape=present.shape, chunks=present.shape, dtype="bool")[:] = (
        present
    )
    shutil.rmtree(part / PROGRESS)

    train = np.flatnonzero(splits == "train")
    stats_split = "train"
    if train.size == 0:
        train, stats_split = np.flatnonzero(written), "all"
        log.warning("no 'train' split: statistics are computed over all chips")
    modalities = schema["modalities"]
    loaders: dict[str, Any] = {}
    for mod in IMAGE_MODALITIES:
        if mod in modalities:
            nodata = fill_value(modalities[mod]["nodata"])
            loaders[mod] = ChipLoader(part, mod, nodata, physical=True)
    stats = band_statistics(
        loaders,
        {m: modalities[m]["bands"] for m in loaders},
        train.tolist(),
        scheduler="threads",
        workers=workers,
    )
    # Class balance per split, over the chips that have the label array.
    labels: dict[str, tuple[Any, Sequence[int]]] = {
        name: (ChipLoader(part, name), classes)
        for name, classes in BALANCE_CLASSES.items()
        if name in modalities
    }
    chips: dict[str, dict[str, Sequence[int]]] = {
        name: {
            str(s): np.flatnonzero((splits == s) & present[:, columns.index(name)]).tolist()
            for s in dict.fromkeys(splits.tolist())
            if s != SKIPPED_SPLIT
        }
        for name in labels
    }
    balance = class_balance(labels, chips, scheduler="threads", workers=workers)
    split_counts = {str(s): int((splits == s).sum()) for s in dict.fromkeys(splits.tolist())}
    label_sources = sources.astype(str)
    attrs = {
        "floodlab_store": STORE_FORMAT,
        "dataset": options["dataset"],
        "num_chips": n,
        "chip_shape": schema["chip_shape"],
        "modalities": {
            m: {
                "bands": v["bands"],
                "dtype": v["dtype"],
                "nodata": v["nodata"],
                "banded": v["banded"],
            }
            for m, v in modalities.items()
        },
        "present_columns": columns,
        "derived": modalities.get("derived", {}).get("bands", []),
        "nodata": (
            "float arrays: NaN; s2/lc uint16: 0; labels int8: -1 = invalid; cloud uint8: 255; "
            "valid = own label >= 0 and input (s1, else s2) not NaN"
        ),
        "split_counts": split_counts,
        "label_source_counts": {
            s: int((label_sources[written] == s).sum())
            for s in dict.fromkeys(label_sources[written].tolist())
        },
        "stats_split": stats_split,
        "stats": stats,
        "class_balance": balance,
        "provenance": {
            "source": options["source"],
            "dataset": options["dataset"],
            "floodlab_version": __version__,
            "converter_version": CONVERTER_VERSION,
            "options": options,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "skipped": [bad[i] for i in sorted(bad)],
            **(provenance_extra or {}),
        },
    }
    root.attrs.update(attrs)
    if "provenance_extra" in root.attrs:  # the partial store's copy, now in provenance
        del root.attrs["provenance_extra"]
    root.attrs.update({"complete": True})  # last: only now may the store be renamed
