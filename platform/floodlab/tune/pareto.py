"""Pareto fronts of multi-objective sweeps: non-dominated trials, their CSV and a plot."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from floodlab.io import save_figure

logger = logging.getLogger(__name__)


def dominates(a: Sequence[float], b: Sequence[float], modes: Sequence[str]) -> bool:
    """Whether point `a` Pareto-dominates `b`: no worse in every objective, better in one.

    Args:
        a: objective values of the first point.
        b: objective values of the second point.
        modes: "max" or "min" per objective.
    """
    better = False
    for x, y, mode in zip(a, b, modes, strict=True):
        sx, sy = (x, y) if mode == "max" else (-x, -y)
        if sx < sy:
            return False
        if sx > sy:
            better = True
    return better


def non_dominated(points: Sequence[Sequence[float]], modes: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates, in input order.

    Points with a missing or non-finite value take no part (they can neither be on the
    front nor dominate anything). Duplicated points are all kept.
    """
    valid = [i for i, p in enumerate(points) if all(v is not None and math.isfinite(v) for v in p)]
    return [
        i for i in valid if not any(dominates(points[j], points[i], modes) for j in valid if j != i)
    ]


def plot_front(
    path: Path,
    labels: Sequence[str],
    points: Sequence[Sequence[float]],
    front: Sequence[int],
    names: Sequence[str],
    modes: Sequence[str],
    title: str = "",
) -> Path:
    """Draw every trial and the Pareto front, one panel per pair of objectives (PNG).

    Args:
        path: the PNG to write (written under a temporary name, then renamed).
        labels: one label per point (trial ids).
        points: objective values per point (same order as `names`).
        front: indices of the non-dominated points.
        names: objective metric names.
        modes: "max" or "min" per objective (shown in the axis labels).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(itertools.combinations(range(len(names)), 2)) or [(0, 0)]
    fig, axes = plt.subplots(
        1, len(pairs), figsize=(5.0 * len(pairs), 4.2), squeeze=False, constrained_layout=True
    )
    on_front = set(front)
    for ax, (i, j) in zip(axes[0], pairs, strict=True):
        finite = [
            k for k, p in enumerate(points) if all(v is not None and math.isfinite(v) for v in p)
        ]
        rest = [k for k in finite if k not in on_front]
        ax.scatter(
            [points[k][i] for k in rest],
            [points[k][j] for k in rest],
            c="0.6",
            s=28,
            label="dominated",
        )
        # The front is drawn as a staircase-free polyline sorted along the x objective.
        ordered = sorted(front, key=lambda k: points[k][i])
        ax.plot(
            [points[k][i] for k in ordered],
            [points[k][j] for k in ordered],
            "o-",
            c="tab:red",
            ms=6,
            label="Pareto front",
        )
        for k in ordered:
            ax.annotate(
                labels[k],
                (points[k][i], points[k][j]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlabel(f"{names[i]} ({modes[i]})")
        ax.set_ylabel(f"{names[j]} ({modes[j]})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    save_figure(fig, path, bbox_inches=None)
    logger.info("wrote the Pareto front plot %s", path)
    return path
