"""Store schema and the per-chip conversion task: validate a `Chip`, encode it, write it.

The schema (which arrays, band names, dtypes, nodata) is learnt from the first readable
chip of each kind of chip in the source (one per distinct set of modality files) and kept
in the partial store's attributes, so a resumed conversion never needs to re-read a chip.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import zarr

from floodlab.data.chunks import ChunkWriter
from floodlab.data.derive import derive_stack, inputs_of
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.errors import DataError, UnitsError
from floodlab.io import atomic_write_text

log = logging.getLogger(__name__)

# How each known modality is stored: dtype, fill/nodata value, whether it has bands.
# float fill NaN is written as the string "NaN" in attrs (JSON has no NaN).
ENCODINGS: dict[str, dict[str, Any]] = {
    "s1": {"dtype": "float32", "nodata": "NaN", "banded": True},
    "s2": {"dtype": "uint16", "nodata": 0, "banded": True},
    "aux": {"dtype": "float32", "nodata": "NaN", "banded": True},
    "derived": {"dtype": "float32", "nodata": "NaN", "banded": True},
    "lc": {"dtype": "uint16", "nodata": 0, "banded": True},
    "label": {"dtype": "int8", "nodata": -1, "banded": False},
    "label_weak": {"dtype": "int8", "nodata": -1, "banded": False},
    "cloud": {"dtype": "uint8", "nodata": 255, "banded": False},
}
# Per-chip bookkeeping of a partial store: `<i>.json` (crs, transform, label source,
# modalities present), written atomically as a chip's last write; removed on completion.
PROGRESS = ".progress"


def fill_value(nodata: Any) -> Any:
    """The attrs nodata value as a numpy fill value ("NaN" -> nan)."""
    return float("nan") if nodata == "NaN" else nodata


def chip_files(ref: ChipRef) -> list[str]:
    """Every source file of a chip (for error messages and provenance)."""
    return [f for files in ref.files.values() for f in files]


def encoding_of(modality: str, array: np.ndarray) -> dict[str, Any]:
    """Storage encoding of a modality; unknown ones keep their dtype (floats: NaN nodata)."""
    if modality in ENCODINGS:
        return dict(ENCODINGS[modality])
    floating = np.issubdtype(array.dtype, np.floating)
    return {
        "dtype": "float32" if floating else str(array.dtype),
        "nodata": "NaN" if floating else 0,
        "banded": array.ndim == 3,
    }


def check_chip(chip: Chip, shape: tuple[int, int] | None) -> tuple[int, int]:
    """Every array of a chip has the same (H, W), equal to the store's `shape` if given.

    Raises:
        DataError naming the chip's files and the shapes found.
    """
    found = {m: tuple(a.shape[-2:]) for m, a in chip.arrays.items()}
    sizes = set(found.values())
    if len(sizes) != 1:
        raise DataError(
            f"chip {chip.ref.id} ({', '.join(chip_files(chip.ref))}): modalities have "
            f"different sizes {found}; the layers of a chip must be co-registered"
        )
    size: tuple[int, int] = next(iter(sizes))
    if shape is not None and size != tuple(shape):
        raise DataError(
            f"chip {chip.ref.id} ({', '.join(chip_files(chip.ref))}) is {size[0]}x{size[1]} "
            f"pixels but this store holds {shape[0]}x{shape[1]} chips (a store requires one "
            "chip size; resize/tile the source or pass --skip-bad to leave such chips out)"
        )
    return size


def label_source_of(chip: Chip) -> str:
    """Label source "hand" or "weak" (from the reader's meta, else from which label array exists)."""
    src = chip.meta.get("label_source")
    if src in ("hand", "weak"):
        return str(src)
    if "label" in chip.arrays:
        return "hand"
    return "weak" if "label_weak" in chip.arrays else "none"


def encode(modality: str, array: np.ndarray, enc: dict[str, Any]) -> np.ndarray:
    """Physical chip values -> stored dtype (s2: NaN -> 0, rounded, clipped to 1..65535)."""
    if enc["dtype"] == "uint16" and modality == "s2":
        # Reflectance x10000 is integral in every S2 source; 0 is nodata, so a real value
        # below 1 (negative L2A reflectance) is clipped to 1 instead of becoming nodata.
        x = np.asarray(array, dtype=np.float32)
        bad = ~np.isfinite(x)
        out = np.clip(np.rint(np.where(bad, 1, x)), 1, 65535).astype(np.uint16)
        out[bad] = 0
        return out
    if enc["nodata"] == "NaN":
        return np.asarray(array, dtype=np.float32)
    return np.asarray(array).astype(enc["dtype"], copy=False)


def physical_getter(chip: Chip) -> Any:
    """A `get(band)` over the chip's banded modalities (NaN-filled if a band is absent)."""
    shape = next(iter(chip.arrays.values())).shape[-2:]

    def get(band: str) -> np.ndarray:
        for mod, names in chip.bands.items():
            if band in names and mod in chip.arrays and chip.arrays[mod].ndim == 3:
                return np.asarray(chip.arrays[mod][list(names).index(band)], dtype=np.float32)
        return np.full(shape, np.nan, dtype=np.float32)

    return get


def chip_bands(chip: Chip) -> set[str]:
    """Every band name the chip has."""
    return {b for names in chip.bands.values() for b in names}


def check_derivable(schema: dict[str, Any], derived: Sequence[str]) -> None:
    """DataError if a requested derived band lacks its inputs in the source."""
    have = {b for m in schema["modalities"].values() for b in m["bands"]}
    for band in derived:
        missing = [b for b in inputs_of(band) if b not in have]
        if missing:
            raise DataError(
                f"--derive {band}: needs band(s) {list(inputs_of(band))} but the source has "
                f"no {missing} (it has {sorted(have)}); drop {band} from --derive"
            )


def valid_mask(chip: Chip, source: str) -> np.ndarray:
    """(H, W) bool: the chip's own label >= 0 (if it has one) and its input is not NaN."""
    first = next(iter(chip.arrays.values()))
    valid = np.ones(first.shape[-2:], dtype=bool)
    own = {"hand": "label", "weak": "label_weak"}.get(source)
    if own and own in chip.arrays:
        valid &= np.asarray(chip.arrays[own]) >= 0
    for mod in ("s1", "s2"):  # SAR is the input where present; optical otherwise (clouds)
        if mod in chip.arrays:
            valid &= np.all(np.isfinite(np.asarray(chip.arrays[mod], dtype=np.float32)), axis=0)
            break
    return valid


_WRITERS: dict[tuple[int, str], dict[str, Any]] = {}


def _writers(path: str, names: list[str]) -> dict[str, Any]:
    """Chunk writers (zarr handles where the layout needs zarr) of the partial store's
    arrays, opened once per process and store."""
    cache = _WRITERS.setdefault((os.getpid(), path), {})
    for name in names:
        if name not in cache:
            writer = ChunkWriter.open(Path(path) / name)
            cache[name] = writer if writer is not None else zarr.open_array(f"{path}/{name}")
    return cache


def forget(path: str | Path) -> None:
    """Drop this process's cached writers of a partial store (it is recreated or done)."""
    _WRITERS.pop((os.getpid(), str(path)), None)


def written_chips(path: str | Path, n: int) -> np.ndarray:
    """(n,) bool: chips whose conversion finished (their progress record exists)."""
    done = np.zeros(n, dtype=bool)
    for f in (Path(path) / PROGRESS).glob("*.json"):
        if f.stem.isdigit() and int(f.stem) < n:
            done[int(f.stem)] = True
    return done


def read_progress(path: str | Path, i: int) -> dict[str, Any]:
    """The progress record of chip i (crs, transform, label_source, present)."""
    return json.loads((Path(path) / PROGRESS / f"{i}.json").read_text())


def encode_chip(chip: Chip, schema: dict[str, Any]) -> EncodedChip:
    """Validate and encode one chip for the store: every array's value and its record.

    This is the costly part of converting a chip after reading it (encoding, derived
    bands, the valid mask), and needs no access to the store: on a Ray cluster it runs
    where the chip was read (`floodlab.data.convert.pipeline`).
    """
    shape = tuple(schema["chip_shape"])
    check_chip(chip, shape)
    source = label_source_of(chip)
    extra = sorted(set(chip.arrays) - set(schema["modalities"]))
    if extra:
        raise DataError(
            f"chip {chip.ref.id} ({', '.join(chip_files(chip.ref))}) has modalities {extra} "
            f"that the store schema ({sorted(schema['modalities'])}) lacks; the reader "
            "returned an unexpected layer"
        )
    writes: list[tuple[str, np.ndarray]] = []  # (array, chip value)
    present = []
    for mod, info in schema["modalities"].items():
        if mod == "derived":
            continue
        arr = chip.arrays.get(mod)
        present.append(arr is not None)
        if arr is None:
            continue  # the array keeps its fill (nodata) value for this chip
        if info["banded"]:
            names = list(chip.bands.get(mod, ()))
            if names != info["bands"]:
                raise DataError(
                    f"chip {chip.ref.id} ({', '.join(chip_files(chip.ref))}): {mod} bands "
                    f"{names} differ from the store's {info['bands']}"
                )
        writes.append((mod, encode(mod, arr, info)))
    if "derived" in schema["modalities"]:
        names = schema["modalities"]["derived"]["bands"]
        writes.append(("derived", derive_stack(names, physical_getter(chip))))
    writes.append(("valid", valid_mask(chip, source)))
    record = {
        "id": chip.ref.id,
        "crs": str(chip.crs),
        "transform": [float(v) for v in chip.transform],
        "label_source": source,
        "present": present,
    }
    return EncodedChip(writes, record)


class EncodedChip(NamedTuple):
    """One chip ready for the store: (array name, value) pairs and its record."""

    writes: list[tuple[str, np.ndarray]]
    record: dict[str, Any]


def store_chip(path: str, i: int, encoded: EncodedChip, schema: dict[str, Any]) -> dict[str, Any]:
    """Write an encoded chip at index i of the store at `path`; its record last.

    Returns:
        {"i", "id", "label_source", "bad": None}.
    """
    arrays = _writers(path, [*schema["modalities"], "valid"])
    for name, value in encoded.writes:
        target = arrays[name]
        if isinstance(target, ChunkWriter):
            target.write(i, value)
        else:
            target[i] = value
    record = encoded.record
    # Last, atomically: a chip without its record is converted again on resume.
    atomic_write_text(Path(path) / PROGRESS / f"{i}.json", json.dumps(record))
    return {"i": i, "id": record["id"], "label_source": record["label_source"], "bad": None}


def write_chip(path: str, i: int, chip: Chip, schema: dict[str, Any]) -> dict[str, Any]:
    """Encode and write one validated chip at index i; mark it written last.

    Returns:
        {"i", "id", "label_source", "bad": None}.
    """
    return store_chip(path, i, encode_chip(chip, schema), schema)


def read_and_encode(
    reader: SourceReader, ref: ChipRef, i: int, schema: dict[str, Any], skip_bad: bool
) -> tuple[int, EncodedChip | dict[str, Any]]:
    """The cluster task of one chip: read and encode it; a bad chip is reported or raised.

    Returns:
        (i, the encoded chip), or (i, the bad-chip record) with `skip_bad`.
    """
    try:
        return i, encode_chip(reader.read(ref), schema)
    except UnitsError:
        raise
    except DataError as e:
        if not skip_bad:
            raise stop_error(ref, e) from None
        log.warning("skipping chip %s: %s", ref.id, e)
        return i, {"i": i, "id": ref.id, "bad": str(e), "files": chip_files(ref)}


def stop_error(ref: ChipRef, e: Exception) -> DataError:
    """The error that stops a conversion at a bad chip: the chip, the cause, the options."""
    return DataError(
        f"chip {ref.id} could not be converted: {e}\nFix or remove the file, or re-run with "
        "--skip-bad to leave unreadable chips out (they are listed in the store's provenance). "
        "Chips written so far are kept and the next run resumes from them."
    )


def convert_chip(
    reader: SourceReader, ref: ChipRef, path: str, i: int, schema: dict[str, Any], skip_bad: bool
) -> dict[str, Any]:
    """The Dask task of one chip: read, validate, write; a bad chip is reported or raised."""
    _, encoded = read_and_encode(reader, ref, i, schema, skip_bad)
    if isinstance(encoded, EncodedChip):
        return store_chip(path, i, encoded, schema)
    return encoded


def schema_of(chips: Sequence[Chip], derived: Sequence[str]) -> dict[str, Any]:
    """Store schema from probe chips (one per kind of chip): modalities, bands, encodings."""
    shape = check_chip(chips[0], None)
    modalities: dict[str, dict[str, Any]] = {}
    for chip in chips:
        check_chip(chip, shape)
        for mod, arr in chip.arrays.items():
            enc = encoding_of(mod, arr)
            enc["bands"] = list(chip.bands.get(mod, ())) if enc["banded"] else []
            if enc["banded"] and len(enc["bands"]) != arr.shape[0]:
                raise DataError(
                    f"chip {chip.ref.id}: {mod} has {arr.shape[0]} channels but the reader "
                    f"named {len(enc['bands'])} bands"
                )
            known = modalities.get(mod)
            if known is not None and known["bands"] != enc["bands"]:
                raise DataError(
                    f"chips {chips[0].ref.id} and {chip.ref.id}: {mod} bands differ "
                    f"({known['bands']} vs {enc['bands']}); a store needs one band order"
                )
            modalities.setdefault(mod, enc)
    schema = {"chip_shape": list(shape), "modalities": modalities}
    if derived:
        check_derivable(schema, derived)
        modalities["derived"] = dict(ENCODINGS["derived"], bands=list(derived))
    return schema


def create_arrays(
    path: Path,
    schema: dict[str, Any],
    refs: Sequence[ChipRef],
    splits: Sequence[str],
    chunk: int,
    compressors: Any,
) -> zarr.Group:
    """Create every array of a fresh partial store (pixels are filled chip by chip)."""
    n = len(refs)
    h, w = schema["chip_shape"]
    ch, cw = min(chunk, h), min(chunk, w)
    forget(path)
    root = zarr.open_group(str(path), mode="w")
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dims: tuple[str, ...]
    for mod, info in schema["modalities"].items():
        if info["banded"]:
            # One band per chunk: a sample reads only the bands it uses (4 of 13 for RGB+NIR).
            shape, chunks = (n, len(info["bands"]), h, w), (1, 1, ch, cw)
            dims = ("chip", "band", "y", "x")
        else:
            shape, chunks, dims = (n, h, w), (1, ch, cw), ("chip", "y", "x")
        root.create_array(
            mod,
            shape=shape,
            chunks=chunks,
            dtype=info["dtype"],
            fill_value=fill_value(info["nodata"]),
            compressors=compressors,
            dimension_names=dims,
        )
    root.create_array(
        "valid",
        shape=(n, h, w),
        chunks=(1, ch, cw),
        dtype="bool",
        fill_value=False,
        compressors=compressors,
        dimension_names=("chip", "y", "x"),
    )
    for name, values in (
        ("id", [r.id for r in refs]),
        ("group", [r.group for r in refs]),
        ("split", list(splits)),
    ):
        arr = root.create_array(name, shape=(n,), chunks=(n,), dtype=str, fill_value="")
        arr[:] = np.asarray(values, dtype=object)
    (Path(path) / PROGRESS).mkdir()
    return root
