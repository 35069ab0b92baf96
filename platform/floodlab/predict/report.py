"""Evaluation reports: CSV/JSON/PNG writers, confusion-matrix plots, panels, the table.

The counts and scores themselves come from `floodlab.metrics.segmentation`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from floodlab.io import atomic_write_text, save_figure, write_json
from floodlab.metrics import keys


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically write rows (dicts with the same keys) as CSV."""
    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["id"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def write_confusion(folder: Path, matrices: dict[str, np.ndarray]) -> tuple[Path, Path]:
    """confusion_matrix.json (``[[tn, fp], [fn, tp]]`` per predictor) and its PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = {}
    for name, c in matrices.items():
        tp, fp, fn, tn = (int(x) for x in c)
        data[name] = {"labels": ["dry", "water"], "rows_true_cols_pred": [[tn, fp], [fn, tp]]}
    json_path = folder / "confusion_matrix.json"
    write_json(json_path, data)
    fig, axes = plt.subplots(1, len(data), figsize=(3.4 * len(data), 3.2), squeeze=False)
    for ax, (name, d) in zip(axes[0], data.items(), strict=True):
        m = np.array(d["rows_true_cols_pred"], dtype=float)
        share = m / max(m.sum(), 1.0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(
                    j,
                    i,
                    f"{int(m[i, j])}\n{100 * share[i, j]:.1f}%",
                    ha="center",
                    va="center",
                    color="white" if share[i, j] > 0.5 else "black",
                    fontsize=8,
                )
        ax.set_xticks([0, 1], ["dry", "water"])
        ax.set_yticks([0, 1], ["dry", "water"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    png_path = folder / "confusion_matrix.png"
    save_figure(fig, png_path)
    return json_path, png_path


def write_panel(
    path: Path,
    *,
    sar_db: np.ndarray | None,
    truth: np.ndarray,
    valid: np.ndarray,
    predictions: dict[str, np.ndarray],
    title: str,
) -> Path:
    """One image's panel: VV (dB), ground truth with excluded pixels marked, each
    predictor's mask, and the first predictor's errors (FP red, FN blue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def label_rgb(mask: np.ndarray) -> np.ndarray:
        rgb = np.full((*mask.shape, 3), 0.92)
        rgb[mask.astype(bool)] = (0.12, 0.35, 0.85)  # water blue
        rgb[~valid] = (0.55, 0.55, 0.55)  # excluded (invalid) pixels grey
        return rgb

    first = next(iter(predictions.values()))
    errors = np.full((*truth.shape, 3), 0.92)
    t, p = truth.astype(bool), first.astype(bool)
    errors[t & p] = (0.2, 0.2, 0.2)
    errors[p & ~t] = (0.85, 0.15, 0.15)  # false alarm
    errors[t & ~p] = (0.15, 0.45, 0.95)  # missed water
    errors[~valid] = (0.55, 0.55, 0.55)
    cols: list[tuple[str, np.ndarray, dict[str, Any]]] = []
    if sar_db is not None:
        cols.append(("VV (dB)", sar_db, {"cmap": "gray", "vmin": -25, "vmax": 0}))
    cols.append(("ground truth (grey: excluded)", label_rgb(truth), {}))
    cols += [(name, label_rgb(m), {}) for name, m in predictions.items()]
    cols.append((f"errors of {next(iter(predictions))}", errors, {}))
    fig, axes = plt.subplots(1, len(cols), figsize=(2.6 * len(cols), 2.9))
    for ax, (name, img, kw) in zip(np.atleast_1d(axes), cols, strict=True):
        ax.imshow(img, **kw)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
    return path


def format_table(report: dict[str, Any]) -> str:
    """A short plain-text table of the aggregate metrics of every predictor."""
    rows = report["predictors"]
    header = f"{report['split']} split, {report['images']} images  " + (
        f"(epoch {report['epoch']} checkpoint)" if report.get("epoch") is not None else ""
    )
    lines = [header]
    if rows:
        names = [keys.IOU, keys.F1, keys.PRECISION, keys.RECALL, keys.ACCURACY]
        width = max(len(n) for n in rows) + 2
        lines.append(" " * width + "".join(f"{n:>11}" for n in names))
        for name, m in rows.items():
            lines.append(f"{name:<{width}}" + "".join(f"{m[n]:>11.4f}" for n in names))
    # The task's own metrics that the table does not show already (e.g. PSNR, SSIM).
    shown = {keys.LOSS, keys.IOU, keys.F1, keys.PRECISION, keys.RECALL, keys.ACCURACY}
    extra = {
        k: v for k, v in report.get("task_metrics", {}).items() if k not in shown and "/" not in k
    }
    if extra:
        lines.append("task metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(extra.items())))
    return "\n".join(lines)
