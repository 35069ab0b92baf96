"""Readers of raw dataset layouts, one per dataset, each yielding `Chip`s (see base.py).

Each reader module registers its dataset's `DatasetEntry` (floodlab.data.registry) after
its reader; importing this package imports them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from floodlab.data.registry import EntryView, get_dataset, reader_options
from floodlab.data.sources.base import Chip, ChipRef, SourceReader, require_modalities
from floodlab.data.sources.cloudsen12 import CloudSEN12Reader
from floodlab.data.sources.deepflood import DeepFloodReader
from floodlab.data.sources.geotiff import GeoTiffReader
from floodlab.data.sources.ombria import OmbriaReader
from floodlab.data.sources.sarkd import SarKDReader
from floodlab.data.sources.sen1floods11 import Sen1Floods11Reader
from floodlab.data.sources.sen12ms import Sen12MSReader
from floodlab.data.sources.stac import StacReader
from floodlab.errors import ReaderOptionError
from floodlab.specs.paths import closest

# Dataset name -> reader class, a live view of the registry.
READERS: EntryView[type[SourceReader]] = EntryView(lambda entry: entry.reader, "readers")


def _describe_options(reader: type[SourceReader]) -> str:
    valid = reader_options(reader)
    return ", ".join(f"{k} (default {v!r})" for k, v in valid.items()) or "none"


def get_reader(name: str, root: str | Path, **options: Any) -> SourceReader:
    """Build the reader of dataset `name` over the raw folder `root`.

    Args:
        name: a registered dataset name (`floodlab.data.registry.dataset_names()`).
        root: folder holding the raw layout.
        **options: reader options (see each reader's docstring), e.g.
            `labels=("hand", "weak")` for sen1floods11, `seasons=("winter",)` for sen12ms,
            `merge_clouds=False` for cloudsen12, `require=("s2",)` for the GeoTIFF readers.

    Returns:
        The reader; call `list_chips()` then `read(ref)` per chip.

    Raises:
        KeyError: unknown dataset name.
        ReaderOptionError: an option the reader does not have, or a value it refuses;
            the message lists the reader's options with their defaults.
    """
    reader = get_dataset(name).reader
    valid = reader_options(reader)
    unknown = [k for k in options if k not in valid]
    if unknown:
        hints = [h for k in unknown if (h := closest(k, valid))]
        hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
        raise ReaderOptionError(
            f"unknown {name} reader option(s) {unknown}{hint}. Valid options of the {name} "
            f"reader: {_describe_options(reader)}; give them as --option KEY=VALUE."
        )
    try:
        return reader(root, **options)
    except (TypeError, ValueError) as e:
        raise ReaderOptionError(
            f"{name} reader options {options}: {e}. Valid options of the {name} reader: "
            f"{_describe_options(reader)}."
        ) from None


def detect_layouts(root: str | Path) -> list[str]:
    """Names of the raw layouts `root` looks like, cheaply (no listing of the whole tree).

    Returns:
        Dataset names (in registry order) whose reader recognises `root`; [] for a file,
        a missing path or an unrelated folder.
    """
    p = Path(root)
    if not p.is_dir():
        return []
    return [name for name, reader in READERS.items() if reader.looks_like(p)]


__all__ = [
    "READERS",
    "Chip",
    "ChipRef",
    "CloudSEN12Reader",
    "DeepFloodReader",
    "GeoTiffReader",
    "OmbriaReader",
    "SarKDReader",
    "Sen1Floods11Reader",
    "Sen12MSReader",
    "SourceReader",
    "StacReader",
    "detect_layouts",
    "get_reader",
    "reader_options",
    "require_modalities",
]
