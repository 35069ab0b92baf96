"""Group-wise split plans for synthetic datasets: every split gets whole groups, none is empty."""

from __future__ import annotations

import math


def split_groups(n_groups: int, fractions: dict[str, float]) -> list[str]:
    """Split name per group index, groups in contiguous runs, each split >= 1 group.

    Args:
        n_groups: number of groups (scenes, ROIs, events); at least len(fractions).
        fractions: split name -> target fraction, in the order the runs are laid out;
            the first split takes whatever the others leave.

    Returns:
        One split name per group.
    """
    names = list(fractions)
    if n_groups < len(names):
        raise ValueError(f"at least {len(names)} groups are needed for {names}, got {n_groups}")
    counts = {s: max(1, math.floor(fractions[s] * n_groups + 0.5)) for s in names[1:]}
    counts[names[0]] = n_groups - sum(counts.values())
    while counts[names[0]] < 1:  # tiny n: give the first split one group back
        donor = max(names[1:], key=lambda s: counts[s])
        counts[donor] -= 1
        counts[names[0]] += 1
    out: list[str] = []
    for s in names:
        out += [s] * counts[s]
    return out
