"""`floodlab evaluate`: a trained run on a split, beside a no-learning Otsu baseline.

Writes into ``<run>/eval/<split>/``:

* ``metrics.json``: per predictor (the model; FLoRA from SAR alone and with its optical
  prior; the Otsu threshold on raw VV dB) IoU/F1/precision/recall/accuracy over all valid
  pixels, mean per-image IoU, per label source (hand/weak), plus the task's own metrics
  (e.g. PSNR/SSIM of FLoRA's translation);
* ``per_image.csv``: one row per image with every predictor's metrics;
* ``confusion_matrix.json`` / ``.png``: aggregated confusion matrices;
* ``best_*.png`` / ``worst_*.png``: panels of the images with the highest/lowest model IoU.

Every metric is masked by label validity (invalid pixels are missing data). Otsu sees
exactly the pixels the model is scored on: its own threshold per image from the raw VV
backscatter of that image, scored on the same validity mask.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from floodlab.data import sample as S
from floodlab.errors import OutputPathError
from floodlab.io import write_json
from floodlab.metrics import keys
from floodlab.metrics.segmentation import confusion_counts, count_scores
from floodlab.predict.report import write_confusion, write_csv, write_panel
from floodlab.train.step import move_batch

log = logging.getLogger(__name__)

MODEL = "model"
WITH_OPTICAL = "model_with_optical"
OTSU = "otsu"
PANELS_EACH = 3  # best and worst images drawn


def _predictors(
    task: Any, has_optical: bool, without_optical: bool
) -> dict[str, Callable[[dict[str, Any]], torch.Tensor]]:
    """Named functions batch -> water probability (B, H, W)."""
    out: dict[str, Callable[[dict[str, Any]], torch.Tensor]] = {}
    fusing = "with_optical" in inspect.signature(task.predict).parameters
    out[MODEL] = lambda b: task.predict(b)["prob"][:, 0]
    if fusing and has_optical and not without_optical:
        out[WITH_OPTICAL] = lambda b: task.predict(b, with_optical=True)["prob"][:, 0]
    return out


def evaluate_run(
    ref: str | Path,
    *,
    split: str | None = None,
    store: str | None = None,
    without_optical: bool = False,
    checkpoint: str = "best",
    root: str | Path = "runs",
    batch_size: int = 8,
    threshold: float = 0.5,
    device: str = "cpu",
    progress: Callable[[int], Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate a run's checkpoint on a split and write the reports.

    The reports go to ``<run>/eval/<split>/`` (`RunDir.eval_dir`; evaluated on another
    store: ``eval/<split>-on-<store>/``).

    Args:
        ref: the run (directory, ``<experiment>/<run>`` or ``<experiment>/latest``).
        split: the split; default the spec's `data.test_split`.
        store: another converted store to evaluate on (the run's normalisation is kept).
        without_optical: FLoRA: report only the SAR-alone predictions.
        checkpoint: "best", "latest" or a checkpoint file.
        root: the runs root.
        batch_size: images per forward pass.
        threshold: probability above which a pixel is water.
        device: "cpu" or "cuda".
        progress: called with the number of images done after each batch.
        overwrite: replace the reports of an earlier evaluation of the same split.

    Returns:
        The report (what metrics.json holds) with ``files``: name -> written path.
    """
    from floodlab.data.load.dataset import FloodDataset
    from floodlab.data.otsu import otsu_water_mask
    from floodlab.predict.restore import load_trained

    trained = load_trained(ref, root=root, checkpoint=checkpoint)
    spec, task = trained.spec, trained.task
    data = spec.data.model_copy(update={"store": store}) if store else spec.data
    split = split or data.test_split
    out_dir = trained.run.eval_dir(split, store)
    if (out_dir / "metrics.json").exists() and not overwrite:
        raise OutputPathError(
            f"{out_dir}: holds the reports of an earlier evaluation of split '{split}'; pass "
            "--overwrite to replace them"
        )
    dataset = FloodDataset(data, split, train=False, seed=spec.seed)
    if trained.normalization:
        dataset.norm = trained.normalization  # the parameters the model was trained with
    seg = data.label in ("flood", "cloud")
    dev = torch.device(device)
    task.to(dev)
    task.eval()
    task.reset_metrics()
    predictors = _predictors(task, bool(data.optical_bands), without_optical) if seg else {}
    use_otsu = data.label == "flood"
    names = [*predictors, *([OTSU] if use_otsu and predictors else [])]
    totals = {n: np.zeros(4, np.int64) for n in names}
    by_source: dict[str, dict[str, np.ndarray]] = {}
    rows: list[dict[str, Any]] = []
    masks: dict[int, dict[str, np.ndarray]] = {}  # kept only for the panel candidates
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    index = 0
    with torch.no_grad():
        for batch in loader:
            batch = move_batch(batch, dev)
            task.eval_step(batch)
            if predictors:
                truth = batch[S.MASK].cpu().numpy() > 0.5  # (B, H, W)
                valid = batch[S.VALID].cpu().numpy()
                preds = {
                    n: (fn(batch).float().cpu().numpy() >= threshold)
                    for n, fn in predictors.items()
                }
                if OTSU in names:
                    sar = batch[S.SAR_DB].cpu().numpy()
                    preds[OTSU] = np.stack([otsu_water_mask(s) == 1 for s in sar])
                for i in range(truth.shape[0]):
                    source = _source(dataset, index)
                    row: dict[str, Any] = {
                        "id": batch[S.ID][i],
                        "source": source,
                        keys.VALID_PIXELS: int(valid[i].sum()),
                        "water_fraction": float(truth[i][valid[i]].mean())
                        if valid[i].any()
                        else float("nan"),
                    }
                    for n in names:
                        c = confusion_counts(preds[n][i], truth[i], valid[i]).numpy()
                        totals[n] += c
                        by_source.setdefault(source, {m: np.zeros(4, np.int64) for m in names})[
                            n
                        ] += c
                        for k, v in count_scores(c).items():
                            row[f"{k}_{n}"] = v
                    rows.append(row)
                    masks[index] = {n: preds[n][i] for n in names}
                    index += 1
                _keep_extremes(rows, masks)
            else:
                index += int(batch[S.IMAGE].shape[0])
            if progress is not None:
                progress(int(batch[S.IMAGE].shape[0]))
    task_metrics = {k: float(v) for k, v in task.compute_metrics().items()}

    out_dir.mkdir(parents=True, exist_ok=True)
    predictors_report = {}
    for n in names:
        m = count_scores(totals[n])
        ious = [r[f"{keys.IOU}_{n}"] for r in rows if np.isfinite(r[f"{keys.IOU}_{n}"])]
        m["mean_image_iou"] = float(np.mean(ious)) if ious else float("nan")
        m.update({k: int(v) for k, v in zip(keys.COUNTS, totals[n], strict=True)})
        predictors_report[n] = m
    report: dict[str, Any] = {
        "run": str(trained.run.path),
        "checkpoint": str(trained.checkpoint),
        "epoch": trained.epoch,
        "split": split,
        "store": data.store_path,
        "images": index,
        "threshold": threshold,
        "predictors": predictors_report,
        "by_source": {
            s: {n: count_scores(c) for n, c in per.items()} for s, per in sorted(by_source.items())
        },
        "task_metrics": task_metrics,
    }
    files: dict[str, str] = {"metrics": str(out_dir / "metrics.json")}
    if rows:
        write_csv(out_dir / "per_image.csv", rows)
        files["per_image"] = str(out_dir / "per_image.csv")
        json_path, png_path = write_confusion(out_dir, totals)
        files["confusion_matrix"], files["confusion_png"] = str(json_path), str(png_path)
        for p in _panels(out_dir, dataset, rows, masks):
            files[p.stem] = str(p)
    write_json(out_dir / "metrics.json", report)
    report["files"] = files
    return report


def _source(dataset: Any, index: int) -> str:
    """The label source (hand/weak) of a dataset sample, "" when unknown."""
    try:
        pos = dataset.samples[index][0]
        return str(dataset.label_sources[pos])
    except (AttributeError, IndexError, TypeError):
        return ""


def _ranked(rows: list[dict[str, Any]]) -> list[int]:
    """Row indices with a finite model IoU, best first (ties: more valid pixels first)."""
    scored = [i for i, r in enumerate(rows) if np.isfinite(r[f"{keys.IOU}_{MODEL}"])]
    return sorted(
        scored, key=lambda i: (-rows[i][f"{keys.IOU}_{MODEL}"], -rows[i][keys.VALID_PIXELS])
    )


def _keep_extremes(rows: list[dict[str, Any]], masks: dict[int, dict[str, np.ndarray]]) -> None:
    """Drop kept masks of images that can no longer be among the best or worst few."""
    order = _ranked(rows)
    keep = set(order[:PANELS_EACH] + order[-PANELS_EACH:])
    for i in [i for i in masks if i not in keep]:
        del masks[i]


def _panels(
    out_dir: Path, dataset: Any, rows: list[dict[str, Any]], masks: dict[int, dict[str, np.ndarray]]
) -> list[Path]:
    """best_<k>_<id>.png and worst_<k>_<id>.png (model IoU), stale panels removed first."""
    for old in list(out_dir.glob("best_*.png")) + list(out_dir.glob("worst_*.png")):
        old.unlink()
    order = _ranked(rows)
    n = min(PANELS_EACH, max(1, len(order) // 2))  # best and worst never overlap
    picks = [("best", k, i) for k, i in enumerate(order[:n], 1)]
    picks += [("worst", k, i) for k, i in enumerate(reversed(order[-n:]), 1) if len(order) > 1]
    written = []
    for tag, k, i in picks:
        sample = dataset[i]
        row = rows[i]
        title = f"{row['id']}  " + "  ".join(
            f"IoU {n}={row[f'{keys.IOU}_{n}']:.3f}"
            for n in masks[i]
            if np.isfinite(row[f"{keys.IOU}_{n}"])
        )
        sar = sample.get(S.SAR_DB)
        written.append(
            write_panel(
                out_dir / f"{tag}_{k}_{row['id']}.png",
                sar_db=None if sar is None else np.asarray(sar),
                truth=np.asarray(sample[S.MASK]) > 0.5,
                valid=np.asarray(sample[S.VALID]).astype(bool),
                predictions=masks[i],
                title=title,
            )
        )
    return written
