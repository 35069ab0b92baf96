"""Train/val/test assignment: official splits when the source has them, else grouped 80/10/10."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from floodlab.data.sources.base import ChipRef

SPLIT_FRACTIONS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
# Spellings of the validation split used by source split files, mapped to the spec's name.
_ALIASES = {"valid": "val", "validation": "val", "training": "train", "testing": "test"}


def canonical_split(name: str) -> str:
    """Source split name -> floodlab's ("valid" -> "val"); other names (e.g. "bolivia") kept."""
    low = name.strip().lower()
    return _ALIASES.get(low, low)


def grouped_splits(
    groups: Sequence[str], seed: int, fractions: dict[str, float] | None = None
) -> list[str]:
    """Assign whole groups to splits so chip counts approach `fractions` (default 80/10/10).

    Groups are shuffled with `seed`; with at least as many groups as splits every split gets
    one group first (so val and test are never empty), then each group goes to the split
    furthest below its target chip count. A group never spans two splits.

    Args:
        groups: the group (event/scene) of every chip.
        seed: shuffling seed; the same seed and groups give the same assignment.
        fractions: split name -> fraction of chips.

    Returns:
        The split of every chip, in input order.
    """
    fractions = fractions or SPLIT_FRACTIONS
    names = list(fractions)
    sizes = Counter(groups)
    order = sorted(sizes)
    rng = np.random.default_rng(seed)
    order = [order[k] for k in rng.permutation(len(order))]
    total = sum(sizes.values())
    counts = dict.fromkeys(names, 0)
    assign: dict[str, str] = {}
    # Seed the smallest splits first so they are not starved by one big group.
    seeded = sorted(names, key=lambda s: fractions[s]) if len(order) >= len(names) else []
    for split, group in zip(seeded, order, strict=False):
        assign[group] = split
        counts[split] += sizes[group]
    for group in order[len(seeded) :]:
        split = max(names, key=lambda s: fractions[s] * total - counts[s])
        assign[group] = split
        counts[split] += sizes[group]
    return [assign[g] for g in groups]


def assign_splits(refs: Sequence[ChipRef], seed: int) -> list[str]:
    """Split of every chip.

    The reader's official split where given. A chip without one (e.g. a Sen1Floods11
    weak-label chip) joins the official split of its group when all official chips of that
    group share one split (so a hold-out event such as Bolivia stays held out); the rest get
    a seeded grouped 80/10/10 among themselves (both label sources in every split).
    """
    return split_plan(refs, seed, ())[0]


def split_plan(
    refs: Sequence[ChipRef], seed: int, files: Sequence[str]
) -> tuple[list[str], dict[str, Any]]:
    """Split of every chip (as `assign_splits`) and how the splits were made.

    Args:
        refs: the listed chips.
        seed: seed of the grouped 80/10/10 split of chips without an official split.
        files: the split files (or folders) the reader took the official splits from.

    Returns:
        (split per chip, provenance) where provenance is ``{"method", "files", "seed",
        "chips": {"listed", "from_group", "random"}, "random_split_counts"}``. method is
        "official" when no chip was assigned at random, "random" when the source has no
        split files (chips get the seeded grouped split, except splits the dataset defines
        by rule such as the Sen1Floods11 Bolivia hold-out), and "official+random" when
        split files exist but some chips are in none of them (e.g. weak-label chips).
        seed is None when nothing was random.
    """
    out: list[str | None] = [canonical_split(r.split) if r.split else None for r in refs]
    official: dict[str, set[str]] = {}
    for ref, split in zip(refs, out, strict=True):
        if split is not None:
            official.setdefault(ref.group, set()).add(split)
    for k, ref in enumerate(refs):
        if out[k] is None and len(official.get(ref.group, ())) == 1:
            (out[k],) = official[ref.group]
    listed = sum(r.split is not None for r in refs)
    rest = [k for k, s in enumerate(out) if s is None]
    if rest:
        for k, split in zip(rest, grouped_splits([refs[k].group for k in rest], seed), strict=True):
            out[k] = split
    method = "official" if not rest else "official+random" if files else "random"
    provenance = {
        "method": method,
        "files": [str(f) for f in files],
        "seed": int(seed) if rest else None,
        "chips": {
            "listed": listed,
            "from_group": len(refs) - listed - len(rest),
            "random": len(rest),
        },
        "random_split_counts": dict(sorted(Counter(out[k] for k in rest).items())),
    }
    return [s for s in out if s is not None], provenance
