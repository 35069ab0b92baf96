"""The dataset registry: one entry per dataset, declared beside its reader, read by everyone.

A dataset is declared once, as a `DatasetEntry` that its reader's module registers at its
end (`floodlab/data/sources/<name>.py`). The entry names the reader (whose `name` is the
dataset's name), the synthetic writer and its chip count, the reader options synthetic
stores are converted with, and the dataset card. Everything else is derived from it:

- the reader options: the keyword-only `__init__` parameters of the reader;
- the derived bands a layout can compute: those whose inputs are all among its bands;
- `get_reader`, `detect_layouts`, `write_synthetic` and `ensure_store`;
- the names a spec's `data.dataset` accepts and the choices of `floodlab synth|convert`;
- the `datasets/<name>/card.yaml` files (`python -m floodlab.data.cards`).

Adding a dataset: a reader module with its entry, a synthetic writer module (`write`,
`count`), an import of the reader in `floodlab/data/sources/__init__.py`, and
`python -m floodlab.data.cards` to write its card.

This module imports nothing heavy: the entries are collected by importing
`floodlab.data.sources` (which imports every reader module) the first time they are
asked for, so `floodlab.specs` can look the names up lazily.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from floodlab.bands import DERIVED_BANDS

if TYPE_CHECKING:
    from floodlab.data.cards import DatasetCard
    from floodlab.data.sources.base import SourceReader

T = TypeVar("T")
# Dataset names are folder names under datasets/, CLI arguments and store names.
NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


# Called with 1 after each chip a synthetic writer writes (progress bars).
Progress = Callable[[int], None]


class SynthWriter(Protocol):
    """Writes a synthetic copy of a raw layout under `root`; returns the layout's root."""

    def __call__(
        self,
        root: Path,
        chips: int,
        size: int,
        seed: int,
        progress: Progress | None = None,
        **options: Any,
    ) -> Path: ...


class SynthCount(Protocol):
    """How many chips a `SynthWriter` writes for these arguments (for progress bars)."""

    def __call__(self, chips: int, **options: Any) -> int: ...


def reader_options(reader: type[SourceReader]) -> dict[str, Any]:
    """The options a reader accepts: its keyword-only `__init__` parameters -> defaults."""
    params = inspect.signature(reader.__init__).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


@dataclass(frozen=True)
class DatasetEntry:
    """Everything floodlab knows about one dataset; register it with `register_dataset`.

    Attributes:
        reader: the reader class of the raw layout; its `name` is the dataset's name.
        synth_write: writes a real-format synthetic copy of the raw layout.
        synth_count: how many chips `synth_write` writes.
        card: the dataset card (source, licence, files, bands, label coding, splits).
        synth_reader_options: reader options synthetic stores are converted with (e.g.
            both Sen1Floods11 label sources, so hand-only and mixed specs share a store).
    """

    reader: type[SourceReader]
    synth_write: SynthWriter
    synth_count: SynthCount
    card: DatasetCard
    synth_reader_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The dataset's name: the `name` of its reader."""
        return self.reader.name

    @property
    def reader_options(self) -> dict[str, Any]:
        """The reader's options with their defaults (its keyword-only parameters)."""
        return reader_options(self.reader)

    @property
    def derivable(self) -> tuple[str, ...]:
        """Derived bands the layout can compute: those whose inputs are all its bands.

        SAR-KD keeps NDVI and NDWI as bands of its own (no B8 to compute them from), so
        only RATIO and MAGNITUDE are derivable there.
        """
        have = {band for bands in self.reader.bands.values() for band in bands}
        return tuple(d for d, inputs in DERIVED_BANDS.items() if set(inputs) <= have)


# Dataset name -> entry, as registered; read through `_load`.
_ENTRIES: dict[str, DatasetEntry] = {}


def qualified_name(obj: Any) -> str:
    """`module.Name` of a class or function, as cards and messages show it."""
    return f"{obj.__module__}.{obj.__qualname__}"


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add a dataset to the registry (call it in the reader's module, after the reader).

    Returns:
        The entry, so a module can keep it as a constant.

    Raises:
        ValueError: a name that is not a lower-case identifier, a name already taken by
            another reader, or synthetic reader options the reader does not have.
    """
    name = entry.name
    if not NAME_RE.fullmatch(name):
        raise ValueError(
            f"dataset name {name!r} (the `name` of {qualified_name(entry.reader)}) must be a "
            "lower-case identifier such as 'sen1floods11': it names folders and CLI arguments"
        )
    old = _ENTRIES.get(name)
    if old is not None and qualified_name(old.reader) != qualified_name(entry.reader):
        raise ValueError(
            f"dataset '{name}' is registered twice: by {qualified_name(old.reader)} and by "
            f"{qualified_name(entry.reader)}; give one reader another `name`"
        )
    unknown = sorted(set(entry.synth_reader_options) - set(entry.reader_options))
    if unknown:
        raise ValueError(
            f"synth_reader_options {unknown} of dataset '{name}' are not options of "
            f"{qualified_name(entry.reader)}; its options: {sorted(entry.reader_options)}"
        )
    _ENTRIES[name] = entry
    return entry


def _load() -> dict[str, DatasetEntry]:
    """The registered entries by name, in alphabetical order (whatever the import order),
    after importing every reader module (once)."""
    importlib.import_module("floodlab.data.sources")
    return dict(sorted(_ENTRIES.items()))


def dataset_names() -> tuple[str, ...]:
    """The registered dataset names, in alphabetical order."""
    return tuple(_load())


def entries() -> tuple[DatasetEntry, ...]:
    """The registered entries, in alphabetical order of their names."""
    return tuple(_load().values())


def get_dataset(name: str) -> DatasetEntry:
    """The entry of dataset `name`.

    Raises:
        KeyError: an unknown name, listing the available ones.
    """
    registered = _load()
    if name not in registered:
        raise KeyError(f"Unknown dataset '{name}'; available: {list(registered)}")
    return registered[name]


class EntryView(Mapping[str, T]):
    """A live read-only mapping dataset name -> one thing of its entry (e.g. its reader)."""

    def __init__(self, pick: Callable[[DatasetEntry], T], what: str) -> None:
        self._pick = pick
        self._what = what

    def __getitem__(self, name: str) -> T:
        return self._pick(_load()[name])

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_load()))

    def __len__(self) -> int:
        return len(_load())

    def __repr__(self) -> str:
        return f"<{self._what} of datasets {list(self)}>"


__all__ = [
    "DatasetEntry",
    "EntryView",
    "Progress",
    "SynthCount",
    "SynthWriter",
    "dataset_names",
    "entries",
    "get_dataset",
    "qualified_name",
    "reader_options",
    "register_dataset",
]
