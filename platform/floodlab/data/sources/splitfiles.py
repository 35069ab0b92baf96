"""Official split files of raw layouts: found as a complete set, never empty, matching chips.

Splits are never silently invented: a split file that is given or expected but missing,
one that lists no chip, or a set of split files that lists none of the source's chips is a
`DataError` naming the files and what was expected. Only a source with no split files at
all gets the seeded random grouped split (announced, and recorded in the store).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from floodlab.errors import DataError


def find_split_files(
    folder: Path,
    candidates: Mapping[str, Sequence[str]],
    required: Collection[str],
    dataset: str,
) -> dict[str, Path]:
    """The split files present in `folder`, checked to be a complete set.

    Args:
        folder: where the layout keeps its split files.
        candidates: split name -> accepted file names, in order of preference
            (e.g. "val" -> ("flood_valid_data.csv", "flood_valid_data.txt")).
        required: splits whose file must exist as soon as any split file does.
        dataset: dataset name, for the message.

    Returns:
        split name -> file, for the splits whose file exists; {} when none does.

    Raises:
        DataError: some split files exist but a required one is missing.
    """
    found: dict[str, Path] = {}
    for split, names in candidates.items():
        for name in names:
            if (folder / name).is_file():
                found[split] = folder / name
                break
    missing = [s for s in required if s not in found]
    if found and missing:
        want = "; ".join(" or ".join(candidates[s]) for s in missing)
        have = ", ".join(p.name for p in found.values())
        raise DataError(
            f"{folder}: the {dataset} split files are incomplete: found {have}, but not "
            f"{want}. A partial set would leave the unlisted chips to a random split: "
            "restore the missing file(s) (from the dataset's release), or remove every "
            "split file to get an announced random grouped split."
        )
    return found


def require_listed(path: Path, ids: Sequence[str], expected: str) -> list[str]:
    """`ids` read from the split file `path`; DataError if it lists none.

    Args:
        path: the split file.
        ids: the chip ids read from it.
        expected: what a line should look like, for the message.
    """
    if not ids:
        raise DataError(
            f"{path}: split file lists no chips (it is empty, or no line looks like "
            f"{expected}); restore the official file, or remove it together with the other "
            "split files to get an announced random grouped split."
        )
    return list(ids)


def check_splits_match(
    listed: Mapping[str, str],
    chip_ids: Iterable[str],
    files: Sequence[str | Path],
    dataset: str,
    fix: str,
) -> None:
    """DataError when split files list chips but none of them is a chip of the source.

    A split file may well list chips the source lacks (a partial download); but when the
    files match no chip at all they belong to another copy or version of the dataset (or
    spell ids differently), and every chip would silently get a random split.

    Args:
        listed: chip id -> split, from the split files.
        chip_ids: ids of the source's chips that the split files could list.
        files: the split files read.
        dataset: dataset name, for the message.
        fix: what to do, e.g. "point --option splits_dir at the matching split files".
    """
    ids = list(chip_ids)
    if not listed or not ids or any(i in listed for i in ids):
        return
    names = ", ".join(str(f) for f in files)
    example_listed = next(iter(listed))
    raise DataError(
        f"none of the {len(listed)} chips listed in the {dataset} split files ({names}) is "
        f"a chip of the source (the files list e.g. {example_listed!r}; the source has "
        f"e.g. {ids[0]!r}, {len(ids)} chip(s) in all). The split files belong to another "
        f"copy or version of the dataset: {fix}."
    )
