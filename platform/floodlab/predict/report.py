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
    sar_units: str = "dB",
) -> Path:
    """One image's panel: VV (-25..0 dB; other units stretched 2-98 %), ground truth with
    excluded pixels marked, each predictor's mask, and the first predictor's errors (FP
    red, FN blue)."""
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
        if sar_units == "dB":
            lo, hi = -25.0, 0.0
        else:  # e.g. stretched per patch: the image's own range
            finite = sar_db[np.isfinite(sar_db)]
            lo, hi = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
        cols.append((f"VV ({sar_units})", sar_db, {"cmap": "gray", "vmin": lo, "vmax": hi}))
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


# Columns of the printed table: (report key, heading).
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    (keys.MEAN_IMAGE_IOU, "mean image IoU"),
    (keys.IOU, "pooled IoU"),
    (keys.MIOU, "mIoU (2-class)"),
    (keys.F1, "F1"),
    (keys.ACCURACY, "accuracy"),
)
TRANSLATION_COLUMNS: tuple[str, ...] = (keys.PSNR, keys.SSIM, keys.SAM, keys.RMSE)


def _cell(value: float, interval: list[float] | None) -> str:
    """``0.512 [0.451, 0.570]``: a score and its bootstrap interval."""
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _signed(d: dict[str, Any]) -> str:
    """``+0.027 [-0.011, +0.064]``: a difference and its paired interval."""
    lo, hi = d["ci95"]
    return f"{d['value']:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def format_table(report: dict[str, Any]) -> str:
    """The evaluation as plain text: every predictor's scores with their 95% intervals,
    the translation beside its per-band-mean baseline, oracles apart, and definitions."""
    rows = report["predictors"]
    info = report.get("evaluation", {})
    header = f"{report['split']} split, {report['images']} images"
    if info:
        h, w = info["chip_shape"]
        header += f" (whole {h}x{w} chips: {info['prediction']})"
    if report.get("label_sources"):
        header += f", labels: {'+'.join(report['label_sources'])}"
    if report.get("epoch") is not None:
        header += f", epoch {report['epoch']} checkpoint"
    lines = [header]
    choice = report.get("threshold_choice")
    if choice:
        scores = dict(zip(choice["grid"], choice["scores"], strict=True))
        at_half = scores.get(0.5)
        lines.append(
            f"model threshold {choice['chosen']}, chosen on split '{choice['split']}' "
            f"(mean image IoU there {scores[choice['chosen']]:.3f}"
            + (f"; at 0.5: {at_half:.3f})" if at_half is not None else ")")
        )
    if rows:
        cells = {
            name: [_cell(m[k], m.get("ci95", {}).get(k)) for k, _ in TABLE_COLUMNS]
            for name, m in rows.items()
        }
        widths = [
            max(len(title), *(len(c[j]) for c in cells.values())) + 2
            for j, (_, title) in enumerate(TABLE_COLUMNS)
        ]
        first = max(len(n) for n in rows) + 2
        lines.append(
            " " * first
            + "".join(f"{t:>{wd}}" for (_, t), wd in zip(TABLE_COLUMNS, widths, strict=True))
        )
        for name, c in cells.items():
            lines.append(
                f"{name:<{first}}" + "".join(f"{v:>{wd}}" for v, wd in zip(c, widths, strict=True))
            )
        left_out = {
            n: m["images_in_mean"]
            for n, m in rows.items()
            if m.get("images_in_mean", report["images"]) < report["images"]
        }
        if left_out:
            lines.append(
                f"mean image IoU over fewer than the {report['images']} images (no flood in "
                "label nor prediction): " + ", ".join(f"{n} {k}" for n, k in left_out.items())
            )
        boot = report.get("bootstrap")
        if boot:
            lines.append(
                f"[low, high]: 95% bootstrap interval over images ({boot['resamples']} "
                f"resamples, seed {boot['seed']})"
            )
        for pair, d in report.get("differences", {}).items():
            lines.append(
                f"{pair}: mean image IoU {_signed(d['mean_image_iou'])}, pooled IoU "
                f"{_signed(d['iou'])}; higher IoU on {100 * d['images_better']:.0f}% of images "
                "(paired bootstrap)"
            )
        eces = {
            n: c["ece"]
            for n, c in report.get("calibration", {}).items()
            if c.get("ece") is not None
        }
        if eces:
            lines.append(
                "calibration (reliability.png): "
                + ", ".join(f"{n} ECE {e:.3f}" for n, e in eces.items())
            )
        for key, _ in TABLE_COLUMNS:
            if key in report.get("definitions", {}):
                lines.append(f"  {key}: {report['definitions'][key]}")
        if eces and "ece" in report.get("definitions", {}):
            lines.append(f"  ece: {report['definitions']['ece']}")
        for name, m in rows.items():
            if m.get("definition"):
                lines.append(f"  {name}: {m['definition']}")
    for title, section in (
        ("translation", report.get("translation", {})),
        ("oracle (its input holds the target: not a SAR-only result)", report.get("oracle", {})),
    ):
        scored = {n: m for n, m in section.items() if isinstance(m, dict)}
        if not scored:
            continue
        lines.append(f"{title}:")
        for name, m in scored.items():
            values = ", ".join(
                f"{k}={m[k]:.4f}" for k in TRANSLATION_COLUMNS if k in m and np.isfinite(m[k])
            )
            lines.append(f"  {name:<28}{values}")
            lines.append(f"  {'':<28}({m['definition']})")
        if "note" in section:
            lines.append(f"  {section['note']}")
    return "\n".join(lines)
