"""Dataset cards: the facts of a registered dataset, rendered as `datasets/<name>/card.yaml`.

A card is part of the dataset's `DatasetEntry` (floodlab.data.registry); the YAML files
are generated from the entries, never edited by hand. Regenerate them from the repository
root after changing an entry, a reader's options or its bands::

    python -m floodlab.data.cards            # write datasets/<name>/card.yaml
    python -m floodlab.data.cards --check    # list stale or orphaned cards, exit 1 if any

A test compares every committed card with the one its entry generates.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from floodlab.bands import S1_BANDS
from floodlab.data.registry import DatasetEntry, entries, qualified_name
from floodlab.data.units import EXPECTED_DB, SAR_UNITS
from floodlab.io import atomic_write_text

# Units vocabulary: the same quantity reads the same on every card.
DB = EXPECTED_DB.stored  # SAR backscatter; other SAR units are converted (floodlab.data.units)
REFLECTANCE = "reflectance x 10000"
TOA_REFLECTANCE = "TOA reflectance x 10000"
INDEX = "index in [-1, 1]"
DEGREES = "degrees"
METRES = "metres"
CLASS_CODES = "class codes"
# What `floodlab convert` does with chips that have no official split.
NO_OFFICIAL_SPLIT = (
    "seeded grouped 80/10/10 split (--seed), announced with a warning and recorded in the "
    "store's provenance['splits']"
)
FILE_NAME = "card.yaml"


@dataclass(frozen=True)
class Modality:
    """One layer of a dataset's files, as stored on disk, keyed by its chip array name.

    Attributes:
        files: where the layer's files are in the layout (patterns such as `<chip>.tif`).
        dtype: data type(s) on disk.
        units: physical units (a word of the units vocabulary above); "" for class codes.
        nodata: how nodata is marked and what the reader turns it into.
        bands: band names when the reader does not declare this modality in its `bands`
            (by default the card shows the reader's bands).
        coding: class code in the file -> meaning, for label and class layers.
        note: anything else a user must know about the layer.
    """

    files: tuple[str, ...]
    dtype: str = ""
    units: str = ""
    nodata: str = ""
    bands: tuple[str, ...] = ()
    coding: Mapping[int | str, str] = field(default_factory=dict)
    note: str = ""

    @classmethod
    def sar_db(cls, files: Sequence[str], *, nodata: str, note: str = "") -> Modality:
        """A layer of float32 SAR backscatter in dB (`DB`)."""
        return cls(files=tuple(files), dtype="float32", units=DB, nodata=nodata, note=note)

    @classmethod
    def reflectance(
        cls,
        files: Sequence[str],
        *,
        dtype: str,
        units: str = REFLECTANCE,
        nodata: str = "0 -> NaN",
        note: str = "",
    ) -> Modality:
        """A layer of optical reflectance x 10000; by default 0 is nodata, read as NaN."""
        return cls(files=tuple(files), dtype=dtype, units=units, nodata=nodata, note=note)


@dataclass(frozen=True)
class LabelCoding:
    """The int8 `label` array a reader returns: where it comes from and what it means.

    Attributes:
        source: the layer or rule it is read from.
        classes: value -> meaning (-1 is always invalid: excluded from losses and metrics).
        note: options that change it, other label arrays.
    """

    source: str
    classes: Mapping[int, str]
    note: str = ""


@dataclass(frozen=True)
class Splits:
    """Where official splits come from (the reader's `split_layout`) and what a group is.

    Attributes:
        group: what one group is; splits never divide a group.
        names: split name in the files -> floodlab split name, where they differ.
        note: anything else (optional files, precedence, hold-outs).
    """

    group: str
    names: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class DatasetCard:
    """What a user needs to know before converting a dataset.

    Attributes:
        title: the dataset's name in words.
        source: where it comes from (URL or how to obtain it).
        licence: its licence, or whose licence applies.
        citation: what to cite.
        modalities: chip array name -> the file layer it is read from.
        label: the coding of the `label` array.
        splits: official splits and groups.
        facts: other facts worth a line (download location, chip counts, seasons, ...).
    """

    title: str
    source: str
    licence: str
    citation: str
    modalities: Mapping[str, Modality]
    label: LabelCoding
    splits: Splits
    facts: Mapping[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """Tuples, mappings and paths as plain YAML-able lists, dicts and strings."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _modality(entry: DatasetEntry, key: str, m: Modality) -> dict[str, Any]:
    bands = m.bands or entry.reader.bands.get(key, ())
    out: dict[str, Any] = {
        "files": list(m.files),
        "bands": list(bands),
        "dtype": m.dtype,
        "units": m.units,
        "nodata": m.nodata,
        "coding": dict(m.coding),
        "note": m.note,
    }
    if "units" in entry.reader_options and set(bands) & set(S1_BANDS):
        other = [u for u in SAR_UNITS if u != "db"]
        out["other_units"] = (
            f"declare them with --units {'|'.join(other)}; converted to {DB} "
            "(floodlab.data.units); undeclared values that cannot be dB are refused"
        )
    return {k: v for k, v in out.items() if v}


def card_data(entry: DatasetEntry) -> dict[str, Any]:
    """The card of `entry` as plain data, in the order of the YAML file."""
    card = entry.card
    label = {"source": card.label.source, "classes": dict(card.label.classes)}
    if card.label.note:
        label["note"] = card.label.note
    splits: dict[str, Any] = {
        "official": entry.reader.split_layout or "none",
        "names": dict(card.splits.names),
        "group": card.splits.group,
        "without_official": NO_OFFICIAL_SPLIT,
        "note": card.splits.note,
    }
    data: dict[str, Any] = {
        "name": entry.name,
        "title": card.title,
        "source": card.source,
        "licence": card.licence,
        "citation": card.citation,
        **card.facts,
        "reader": qualified_name(entry.reader),
        "reader_options": entry.reader_options,
        "derived_bands": list(entry.derivable),
        "synthetic": {
            "writer": qualified_name(entry.synth_write),
            "reader_options": dict(entry.synth_reader_options),
        },
        "modalities": {k: _modality(entry, k, m) for k, m in card.modalities.items()},
        "label": label,
        "splits": {k: v for k, v in splits.items() if v},
    }
    return _plain(data)


class _CardDumper(yaml.SafeDumper):
    """Short lists and mappings of scalars on one line, long text folded at `WIDTH`."""


WIDTH = 92  # characters per line of a card


def _one_line(values: Sequence[Any]) -> bool:
    scalars = all(isinstance(v, str | int | float | bool) or v is None for v in values)
    return scalars and sum(len(str(v)) + 2 for v in values) <= WIDTH - 30


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = ">" if len(text) > WIDTH - 12 and " " in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _represent_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=_one_line(items))


def _represent_dict(dumper: yaml.SafeDumper, mapping: dict[Any, Any]) -> yaml.Node:
    flow = _one_line([*mapping, *mapping.values()])
    return dumper.represent_mapping("tag:yaml.org,2002:map", mapping, flow_style=flow)


_CardDumper.add_representer(str, _represent_str)
_CardDumper.add_representer(list, _represent_list)
_CardDumper.add_representer(dict, _represent_dict)


def render_card(entry: DatasetEntry) -> str:
    """The text of `datasets/<name>/card.yaml` for `entry`."""
    header = (
        f"# Dataset card of {entry.name}, generated from its DatasetEntry in\n"
        f"# {entry.reader.__module__} by `python -m floodlab.data.cards`:\n"
        "# edit the entry, not this file.\n"
    )
    body = yaml.dump(
        card_data(entry), Dumper=_CardDumper, sort_keys=False, width=WIDTH, allow_unicode=True
    )
    return header + body


def stale_cards(root: str | Path = "datasets") -> list[str]:
    """Cards under `root` that differ from their entries, are missing, or have no entry."""
    root = Path(root)
    problems = []
    names = set()
    for entry in entries():
        names.add(entry.name)
        path = root / entry.name / FILE_NAME
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text() != render_card(entry):
            problems.append(f"{path}: differs from the entry in {entry.reader.__module__}")
    for path in sorted(root.glob(f"*/{FILE_NAME}")):
        if path.parent.name not in names:
            problems.append(f"{path}: no registered dataset '{path.parent.name}'")
    return problems


def write_cards(root: str | Path = "datasets") -> list[Path]:
    """Write the card of every registered dataset under `root`; returns those changed."""
    changed = []
    for entry in entries():
        path = Path(root) / entry.name / FILE_NAME
        text = render_card(entry)
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m floodlab.data.cards [--check] [--root DIR]`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m floodlab.data.cards",
        description="Generate datasets/<name>/card.yaml from the registered dataset entries.",
    )
    parser.add_argument("--root", default="datasets", help="folder of the dataset folders")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; list stale cards, exit 1 if any"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_cards(args.root)
        for line in problems:
            print(line)
        if problems:
            print("regenerate them with `python -m floodlab.data.cards`")
        return 1 if problems else 0
    for path in write_cards(args.root):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
