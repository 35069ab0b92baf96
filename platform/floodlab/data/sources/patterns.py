"""File patterns that pair a researcher's image and label files, and split CSVs naming chips.

A pattern is a glob relative to the source folder (``*``, ``?``, ``[...]``, ``**/``).
Whatever its wildcards match is the file's *key*: the parts joined by ``_`` (folders
matched by ``**/`` or ``*`` included). Files of different patterns with the same key
belong to the same chip, and the key is the chip's id::

    S1/*_VV_VH.tif       S1/Ghana_1_VV_VH.tif      -> key Ghana_1
    masks/*.tif          masks/Ghana_1.tif         -> key Ghana_1
    */img/*.tif          train/img/0001.tif        -> key train_0001

``{band}`` in an image pattern matches the band name(s) a file holds, as its name spells
them: one floodlab band name (any case), or several joined by ``_``. ``S1/*_{band}.tif``
reads both ``S1/a_VV.tif`` + ``S1/a_VH.tif`` (one file per band) and ``S1/b_VV_VH.tif``
(both bands, in that order) — chips exported either way share one pattern. A ``*`` matches
as little as it can, so the chip id ends where the band names begin.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from floodlab.data.convert.splits import canonical_split
from floodlab.data.sources.generic import BAND_MODALITY
from floodlab.errors import DataError

BAND = "{band}"
_SPLIT_NAME = re.compile(r"[a-z][a-z0-9_]*")
# One floodlab band name (longest first, so B12 is tried before B1), then more joined by _.
_ONE_BAND = "|".join(sorted((re.escape(b) for b in BAND_MODALITY), key=len, reverse=True))
_BAND_LIST = f"(?P<band>(?i:(?:{_ONE_BAND})(?:_(?:{_ONE_BAND}))*))"

# A file a pattern matched: its path and the bands its name spells (() without {band}).
Match = tuple[Path, tuple[str, ...]]


@dataclass(frozen=True)
class FilePattern:
    """One glob pattern relative to the source folder, and the regex that reads its key.

    Attributes:
        text: the pattern as given (for messages).
        glob: the pattern for `Path.glob` (`{band}` as `*`).
        regex: matches a file's path relative to the root; its unnamed groups are the
            key's parts, its `band` group the band names of a `{band}` pattern.
        banded: the pattern has `{band}`: a chip may have several files, named by band.
    """

    text: str
    glob: str
    regex: re.Pattern[str]
    banded: bool

    @classmethod
    def parse(cls, text: str, option: str, banded_ok: bool = True) -> FilePattern:
        """Compile a pattern; ValueError naming `option` when it cannot name chips."""
        text = text.strip()
        if not text or text.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", text):
            raise ValueError(
                f"{option} {text!r}: patterns are relative to the source folder, e.g. 'S1/*_VV.tif'"
            )
        banded = BAND in text
        if banded and (not banded_ok or text.count(BAND) > 1):
            raise ValueError(f"{option} {text!r}: {BAND} may appear once, in image patterns")
        if "*" not in text:
            raise ValueError(
                f"{option} {text!r}: a pattern needs a * where the chip id is, e.g. "
                "'masks/*.tif'; the files of a chip are paired by what the wildcards match"
            )
        head, _, tail = text.partition(BAND)
        regex = _to_regex(head) + (_BAND_LIST + _to_regex(tail) if banded else "")
        return cls(text, text.replace(BAND, "*"), re.compile(regex), banded)

    def files(self, root: Path) -> dict[str, list[Match]]:
        """Key -> the files under `root` the pattern matches (one unless `banded`).

        Raises:
            DataError: two files with the same key (naming both and the fix), or two
                files of one chip that spell the same band.
        """
        out: dict[str, list[Match]] = {}
        for path in sorted(root.glob(self.glob)):
            m = self.regex.fullmatch(path.relative_to(root).as_posix())
            if m is None or not path.is_file():
                continue
            parts = [g for k, g in enumerate(m.groups(), 1) if k != self._band_group and g]
            key = "_".join(p.strip("/").replace("/", "_") for p in parts if p.strip("/"))
            bands = tuple(_spelled(m.group("band"))) if self.banded else ()
            have = out.setdefault(key, [])
            if have and not self.banded:
                raise DataError(
                    f"{have[0][0]} and {path} both match {self.text!r} with the chip id "
                    f"{key!r}; chip ids are what the wildcards match and must differ — "
                    "narrow the pattern, or add the folder to the id with another wildcard."
                )
            for other, other_bands in have:
                if set(bands) & set(other_bands):
                    raise DataError(
                        f"{other} and {path} both hold band(s) "
                        f"{sorted(set(bands) & set(other_bands))} of chip {key!r}; keep one "
                        "file per band."
                    )
            have.append((path, bands))
        return out

    @property
    def _band_group(self) -> int:
        """The index of the `band` group (0 when the pattern has none)."""
        return self.regex.groupindex.get("band", 0)


def _spelled(text: str) -> list[str]:
    """Band names from their `_`-joined spelling in a file name, e.g. "vv_VH" -> [VV, VH]."""
    out, rest = [], text
    while rest:
        band = next(
            b for b in sorted(BAND_MODALITY, key=len, reverse=True)
            if rest.lower().startswith(b.lower()) and rest[len(b) : len(b) + 1] in ("", "_")
        )  # fmt: skip
        out.append(band)
        rest = rest[len(band) + 1 :]
    return out


def _to_regex(glob: str) -> str:
    """The regex of a glob: each `*` and `**/` a group, `?` and `[...]` matched but not kept."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("((?:[^/]+/)*)")
            i += 3
        elif glob.startswith("**", i):
            out.append("(.*)")
            i += 2
        elif glob[i] == "*":
            out.append("([^/]*?)")  # as little as it can: the id stops before {band}
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def image_patterns(texts: Sequence[str], bands: Sequence[str]) -> list[FilePattern]:
    """The image patterns, checked against `--bands`.

    Raises:
        ValueError: no pattern, or `--bands` with only `{band}` patterns (whose file names
            name their bands).
    """
    if not texts:
        raise ValueError("images: give at least one pattern, e.g. --images 'S1/*.tif'")
    patterns = [FilePattern.parse(t, "images") for t in texts]
    if bands and all(p.banded for p in patterns):
        raise ValueError(
            f"bands {list(bands)}: every image pattern has {BAND}, so the file names name "
            "the bands; --bands names the bands of image files without {band} — drop it."
        )
    return patterns


def unmatched_error(
    keys: Mapping[str, Mapping[str, Sequence[Match]]], root: Path, fix: str
) -> DataError | None:
    """The error for chips that lack a file of some pattern, or None when every key of
    every pattern is in all of them.

    Args:
        keys: pattern text -> (key -> file) of each pattern.
        root: the source folder, for the message.
        fix: what to do, in words.
    """
    all_keys = set().union(*(set(k) for k in keys.values()))
    problems = []
    for key in sorted(all_keys):
        lacking = [p for p, files in keys.items() if key not in files]
        if lacking:
            have = next(files[key][0][0] for files in keys.values() if key in files)
            problems.append(f"{have} (chip {key!r}) has no file matching {lacking[0]!r}")
    if not problems:
        return None
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return DataError(
        f"{len(problems)} file(s) under {root} have no partner: {'; '.join(problems[:3])}"
        f"{more}. {fix}"
    )


def read_split_csv(path: Path, lookup: Mapping[str, str]) -> dict[str, str]:
    """chip id -> split from a CSV with `chip` and `split` columns.

    The header row names the columns (`chip`, `split`, in any order, others ignored); a
    file without one is read as two columns chip,split. A chip cell may hold the chip id or
    the name or relative path of any of the chip's files.

    Args:
        path: the CSV.
        lookup: chip id, file name or relative file path -> chip id.

    Raises:
        DataError: a missing or empty file, a row without a chip or split, a split name
            that is not a lower-case word, a chip listed twice with two splits, or chips
            that are not in the source (naming them and their rows).
    """
    if not path.is_file():
        raise DataError(
            f"--splits {path}: file does not exist; give a CSV with chip,split columns, or "
            "--splits random for a seeded random grouped split."
        )
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    start, col_chip, col_split = 0, 0, 1
    if rows and {"chip", "split"} <= {c.strip().lower() for c in rows[0]}:
        header = [c.strip().lower() for c in rows[0]]
        start, col_chip, col_split = 1, header.index("chip"), header.index("split")
    out: dict[str, str] = {}
    unknown: list[str] = []
    for n, row in enumerate(rows[start:], start=start + 1):
        cells = [c.strip() for c in row]
        if len(cells) <= max(col_chip, col_split) or not cells[col_chip] or not cells[col_split]:
            raise DataError(f"{path} row {n}: expected chip,split, got {row}")
        name, split = cells[col_chip], canonical_split(cells[col_split])
        if not _SPLIT_NAME.fullmatch(split):
            raise DataError(
                f"{path} row {n}: split {cells[col_split]!r} is not a split name; use train, "
                "val, test (or another lower-case word for a hold-out)"
            )
        chip = lookup.get(name) or lookup.get(Path(name).name)
        if chip is None:
            unknown.append(f"{name!r} (row {n})")
            continue
        if out.get(chip, split) != split:
            raise DataError(f"{path} row {n}: chip {chip} is listed as {out[chip]} and {split}")
        out[chip] = split
    if unknown:
        example = next(iter(lookup), "")
        raise DataError(
            f"{path} names {len(unknown)} chip(s) that are not in the source: "
            f"{', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''}. The chip column "
            f"takes chip ids (e.g. {example!r}) or file names of the chip; fix the CSV, or the "
            "patterns if they miss those chips."
        )
    if not out:
        raise DataError(f"{path}: lists no chips; give chip,split rows")
    return out
