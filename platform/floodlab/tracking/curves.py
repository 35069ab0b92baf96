"""``curves.png`` of a run: its losses and validation metrics per epoch, train beside val.

Rank 0 redraws it in a background thread (`CurvesPainter`) after each epoch, as long as
drawing takes at most 5% of the time: a drawing costs about half a second of matplotlib
(CPU that training would otherwise get), which for epochs of minutes is nothing and for
epochs of seconds means a picture every few epochs. It is complete when the run ends. This module imports no torch; matplotlib is imported when a plot is
drawn (through `matplotlib.figure.Figure`, which needs no GUI and no main thread).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from floodlab.io import save_figure

log = logging.getLogger(__name__)

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
    # The constrained layout already fits every label: a tight bounding box would lay the
    # figure out a second time.
    save_figure(fig, path, bbox_inches=None)
    return panels


class CurvesPainter:
    """Draws curves.png off the training path: one background thread, newest records only.

    `paint` hands over the records and returns at once; while a drawing is in progress,
    later requests replace each other, so a slow plot skips intermediate epochs rather
    than falling behind, and after a drawing of d seconds the next waits until d is at
    most `share` of the time since the last began. `close` waits until the newest records
    are drawn and ends the thread (a later `paint` starts another). A drawing that fails is
    logged once and no more are attempted: a plot never stops training.
    """

    def __init__(self, path: str | Path, title: str = "", share: float = 0.05) -> None:
        self.path, self.title, self.share = Path(path), title, share
        self.failed = False
        self._next = 0.0  # time.monotonic() before which no drawing starts (but the last)
        self._pending: list[dict[str, Any]] | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def paint(self, records: Sequence[dict[str, Any]]) -> None:
        """Draw these records (a copy is kept) as soon as the thread is free."""
        if self.failed:
            return
        with self._cond:
            self._pending = [dict(r) for r in records]
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="floodlab-curves", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def close(self) -> None:
        """Block until every requested drawing is done (or has failed); end the thread."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._thread is not me)
                # Within the time share; `close` draws the newest records at once.
                self._cond.wait_for(
                    lambda: self._thread is not me, timeout=self._next - time.monotonic()
                )
                if self._pending is None:
                    return  # closed, nothing left to draw
                records, self._pending = self._pending, None
            try:
                if not self.failed:
                    began = time.monotonic()
                    plot_curves(records or [], self.path, title=self.title)
                    self._next = began + (time.monotonic() - began) / self.share
            except Exception:
                self.failed = True
                log.warning("could not draw %s; training goes on", self.path, exc_info=True)
