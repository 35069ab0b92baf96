"""Two evaluated runs on the same chips: their scores and the paired difference.

An ablation asks whether run A beats run B, and two overlapping intervals do not answer
it: the chips that are hard for one model are mostly hard for the other. `compare_runs`
reads the per-image confusion counts that `floodlab evaluate` wrote for both runs
(``<run>/eval/<split...>/per_image.csv``), matches the chips by id, and resamples the
same chips for both (`floodlab.metrics.bootstrap.paired_differences`), so the interval
of A - B is the paired one. It reads reports only; nothing is evaluated or written.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from floodlab.errors import FloodlabError
from floodlab.metrics import keys
from floodlab.metrics.bootstrap import bootstrap_intervals, paired_differences, summarise
from floodlab.tracking.rundir import RunDir

# Columns that identify a row of per_image.csv (band: band-agnostic evaluations).
ROW_KEYS: tuple[str, ...] = ("id", "source", "band")
# Settings of the two evaluations that must agree for their chips to be comparable.
SAME_SETTINGS: tuple[str, ...] = ("split", "label_sources")


def compare_runs(
    a: str,
    b: str,
    *,
    root: str | Path = "runs",
    split: str = "test",
    store: str | None = None,
    tta: str = "none",
    threshold: float | str = 0.5,
    predictor: str = "model",
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Scores of runs `a` and `b` on the chips both were evaluated on, and a - b.

    Args:
        a, b: runs (directory, ``<experiment>/<run>`` or ``<experiment>/latest``).
        root: runs root for ``<experiment>/...`` references.
        split, store, tta, threshold: which evaluation of each run, as given to
            `floodlab evaluate` (they name its report folder, `RunDir.eval_dir`).
        predictor: the per-image columns compared ("model", or "model_with_optical" for
            FLoRA's fused prediction).
        resamples, seed: the bootstrap over chips.

    Returns:
        ``runs`` (label -> run path, report folder, evaluation threshold), ``chips``,
        ``predictors`` (label -> scores with ``ci95``), ``difference`` (``"A - B"`` -> the
        paired differences and ``images_better``) and ``predictor``.

    Raises:
        FloodlabError: a run or its report is missing, the predictor is not in a report, or
            the two reports do not score the same chips with the same labels.
    """
    reports = {ref: _report(ref, root, split, store, tta, threshold) for ref in (a, b)}
    if len(reports) == 1:
        raise FloodlabError(f"compare: both runs are {a!r}; give two different runs")
    labels = {a: a, b: b}
    for field in SAME_SETTINGS:
        va, vb = (reports[ref]["metrics"].get(field) for ref in (a, b))
        if va != vb:
            raise FloodlabError(
                f"compare: the evaluations differ in {field} ({labels[a]}: {va!r}, "
                f"{labels[b]}: {vb!r}); evaluate both runs on the same {field}"
            )
    counts = {labels[ref]: _counts(reports[ref], predictor) for ref in (a, b)}
    ids_a, ids_b = (set(counts[labels[ref]]) for ref in (a, b))
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        raise FloodlabError(
            f"compare: the runs were evaluated on different chips ({labels[a]}: {len(ids_a)}, "
            f"{labels[b]}: {len(ids_b)}; only in {labels[a]}: {_few(only_a)}; only in "
            f"{labels[b]}: {_few(only_b)}); evaluate both on the same store and split"
        )
    # A's row order: with the same seed, the resamples are those `floodlab evaluate` drew.
    order = list(counts[labels[a]])
    arrays = {name: np.stack([c[k] for k in order]) for name, c in counts.items()}
    intervals = bootstrap_intervals(arrays, resamples=resamples, seed=seed)
    la, lb = labels[a], labels[b]
    difference = paired_differences(arrays, [(la, lb)], resamples=resamples, seed=seed)
    return {
        "predictor": predictor,
        "chips": len(order),
        "runs": {
            labels[ref]: {
                "run": str(r["run"]),
                "report": str(r["dir"]),
                "threshold": r["metrics"].get("threshold"),
                "checkpoint_epoch": r["metrics"].get("epoch"),
            }
            for ref, r in reports.items()
        },
        "predictors": {
            name: {**summarise(c), "ci95": intervals[name]} for name, c in arrays.items()
        },
        "difference": difference,
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95},
    }


def _report(
    ref: str,
    root: str | Path,
    split: str,
    store: str | None,
    tta: str,
    threshold: float | str,
) -> dict[str, Any]:
    run = RunDir.open(ref, root=root)
    out_dir = run.eval_dir(split, store, tta, threshold)
    csv_path, metrics_path = out_dir / "per_image.csv", out_dir / "metrics.json"
    if not csv_path.is_file() or not metrics_path.is_file():
        raise FloodlabError(
            f"run {ref!r}: no evaluation report in {out_dir}; run `floodlab evaluate "
            f"{run.path} --split {split}` (with the same --store, --tta and --threshold) first"
        )
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        "run": run.path,
        "dir": out_dir,
        "rows": rows,
        "metrics": json.loads(metrics_path.read_text()),
    }


def _counts(report: dict[str, Any], predictor: str) -> dict[tuple[str, ...], np.ndarray]:
    """Chip key -> (4,) counts of `predictor` in one report's rows."""
    columns = [f"{k}_{predictor}" for k in keys.COUNTS]
    rows = report["rows"]
    if not rows:
        raise FloodlabError(f"{report['dir']}/per_image.csv: no rows; evaluate the run again")
    if any(c not in rows[0] for c in columns):
        present = sorted(
            {c.removeprefix(f"{keys.COUNTS[0]}_") for c in rows[0] if c.startswith("tp_")}
        )
        raise FloodlabError(
            f"{report['dir']}/per_image.csv: no predictor {predictor!r} (it has: "
            f"{', '.join(present)}); choose one of those with --predictor"
        )
    out: dict[tuple[str, ...], np.ndarray] = {}
    for row in rows:
        key = tuple(row[k] for k in ROW_KEYS if k in row)
        out[key] = np.array([int(row[c]) for c in columns], dtype=np.int64)
    return out


def _few(items: list[tuple[str, ...]], shown: int = 3) -> str:
    if not items:
        return "none"
    names = ["/".join(k) for k in items[:shown]]
    return ", ".join(names) + (f" and {len(items) - shown} more" if len(items) > shown else "")


def format_comparison(report: dict[str, Any]) -> str:
    """A small table: each run's mean per-image and pooled IoU, then A - B, paired."""
    lines = [
        f"{report['chips']} chips, predictor {report['predictor']!r}; mean per-image flood IoU "
        "and pooled IoU with 95% bootstrap intervals over chips (the same resamples for both)"
    ]
    width = max(len(n) for n in report["predictors"]) + 2
    for name, s in report["predictors"].items():
        ci = s["ci95"]
        lines.append(
            f"  {name:<{width}}{s[keys.MEAN_IMAGE_IOU]:.3f} {_ci(ci[keys.MEAN_IMAGE_IOU])}"
            f"   pooled {s[keys.IOU]:.3f} {_ci(ci[keys.IOU])}"
        )
    for pair, d in report["difference"].items():
        mean, pooled = d[keys.MEAN_IMAGE_IOU], d[keys.IOU]
        lines.append(
            f"  {pair}: {mean['value']:+.3f} {_ci(mean['ci95'], sign=True)}   pooled "
            f"{pooled['value']:+.3f} {_ci(pooled['ci95'], sign=True)}   better on "
            f"{d['images_better']:.0%} of chips"
        )
    return "\n".join(lines)


def _ci(bounds: list[float], *, sign: bool = False) -> str:
    fmt = "{:+.3f}" if sign else "{:.3f}"
    return "[" + ", ".join(fmt.format(v) for v in bounds) + "]"
