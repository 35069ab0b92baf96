"""``curves.png`` of a run: its losses and validation metrics per epoch, train beside val.

Rank 0 redraws it from metrics.jsonl after every epoch, so the picture of a running run is
never more than one epoch old. This module imports no torch; matplotlib is imported when a
plot is drawn (through `matplotlib.figure.Figure`, which needs no GUI and no main thread:
Ray Train calls rank 0's hooks from a worker thread).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from floodlab.io import save_figure

# Panel titles of curves.png, in order.
LOSS, LOSS_TERMS, METRICS, OTHER_METRICS = (
    "loss",
    "loss terms",
    "validation metrics",
    "validation metrics (other scales)",
)
Series = dict[str, tuple[list[int], list[float]]]  # label -> (epochs, values)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(int(r["epoch"]), float(r[key])) for r in records if _finite(r.get(key))]
    return [e for e, _ in points], [v for _, v in points]


def curve_series(records: Sequence[dict[str, Any]]) -> dict[str, Series]:
    """What curves.png shows: panel -> label (a metrics.jsonl key) -> (epochs, values).

    Panels: the total loss (``train/loss``, ``val/loss``); each loss term, train and val
    (``train/loss/<term>``, ``val/loss/<term>``); the validation metrics (every other
    ``val/*`` key) whose values lie in [0, 1] (IoU, F1, ...), and those on other scales
    (PSNR in dB, SAM in degrees, ...). Empty panels are left out.
    """
    keys: list[str] = []
    for r in records:
        keys += [k for k in r if k not in keys and _finite(r[k])]
    panels: dict[str, Series] = {LOSS: {}, LOSS_TERMS: {}, METRICS: {}, OTHER_METRICS: {}}
    for key in keys:
        split, _, name = key.partition("/")
        if split not in ("train", "val") or not name:
            continue
        series = _series(records, key)
        if name == "loss":
            panels[LOSS][key] = series
        elif name.startswith("loss/"):
            panels[LOSS_TERMS][key] = series
        elif split == "val":
            in_unit = all(-1e-9 <= v <= 1 + 1e-9 for v in series[1])
            panels[METRICS if in_unit else OTHER_METRICS][key] = series
    return {title: series for title, series in panels.items() if series}


def plot_curves(
    records: Sequence[dict[str, Any]], path: str | Path, *, title: str = ""
) -> dict[str, Series]:
    """Draw `curve_series(records)` into the PNG `path` (atomically).

    Train curves are solid, validation curves dashed, a term's train and val curves share
    a colour.

    Returns:
        The plotted series (what `curve_series` returns); {} and no file without records.
    """
    panels = curve_series(records)
    if not panels:
        return panels
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6 * len(panels), 3.8), constrained_layout=True)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (panel, series) in zip(axes, panels.items(), strict=True):
        colours: dict[str, str] = {}
        for key, (epochs, values) in series.items():
            split, _, name = key.partition("/")
            colour = colours.setdefault(name, f"C{len(colours) % 10}")
            ax.plot(
                epochs,
                values,
                "--" if split == "val" else "-",
                color=colour,
                marker="o",
                ms=3,
                label=key,
            )
        ax.set_title(panel)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return panels
