"""Readers of raw dataset layouts, one per dataset, each yielding `Chip`s (see base.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.sources.cloudsen12 import CloudSEN12Reader
from floodlab.data.sources.common import require_modalities
from floodlab.data.sources.deepflood import DeepFloodReader
from floodlab.data.sources.sarkd import SarKDReader
from floodlab.data.sources.sen1floods11 import Sen1Floods11Reader
from floodlab.data.sources.sen12ms import Sen12MSReader

# Dataset name (as in floodlab.specs.data.DATASETS) -> reader class.
READERS: dict[str, type[SourceReader]] = {
    "sen1floods11": Sen1Floods11Reader,
    "sen12ms": Sen12MSReader,
    "deepflood": DeepFloodReader,
    "cloudsen12": CloudSEN12Reader,
    "sarkd": SarKDReader,
}


def get_reader(name: str, root: str | Path, **options: Any) -> SourceReader:
    """Build the reader of dataset `name` over the raw folder `root`.

    Args:
        name: dataset name, a key of `READERS`.
        root: folder holding the raw layout.
        **options: reader options (see each reader's docstring), e.g.
            `labels=("hand", "weak")` for sen1floods11, `seasons=("winter",)` for sen12ms,
            `merge_clouds=False` for cloudsen12, `require=("s2",)` for the GeoTIFF readers.

    Returns:
        The reader; call `list_chips()` then `read(ref)` per chip.

    Raises:
        KeyError: unknown dataset name.
    """
    if name not in READERS:
        raise KeyError(f"Unknown dataset '{name}'; available: {sorted(READERS)}")
    return READERS[name](root, **options)


__all__ = [
    "READERS",
    "Chip",
    "ChipRef",
    "CloudSEN12Reader",
    "DeepFloodReader",
    "SarKDReader",
    "Sen1Floods11Reader",
    "Sen12MSReader",
    "SourceReader",
    "get_reader",
    "require_modalities",
]
