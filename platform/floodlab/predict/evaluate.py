"""`floodlab evaluate`: a trained run on every valid pixel of a split's whole chips.

Every chip is predicted whole (`floodlab.predict.chips`: one fully convolutional pass, or
windows blended as in scene prediction for chips larger than `window`), normalised exactly
as in training (the run's saved normalisation; ``per_patch`` uses the statistics of what
the model sees: the whole chip in one pass, each window when windowed). Writes into
``<run>/eval/<split>/``:

* ``metrics.json``: per predictor (the model from SAR alone; FLoRA also fused with its
  optical prior; Otsu; all-water) the scores of `floodlab.metrics.bootstrap` (mean
  per-image flood IoU, pooled flood IoU, two-class mIoU, F1, precision, recall, accuracy),
  each with a 95% bootstrap interval over images, the summed confusion counts, and the
  exact definition of every score and predictor; per label source (hand/weak); for
  translating families the translation scores beside the per-band-mean baseline, and any
  oracle (a figure whose input holds the target) in a separate ``oracle`` section
  (`floodlab.predict.translation_scores`);
* ``per_image.csv``: one row per whole chip (per chip and band in band-agnostic mode)
  with its size, valid pixels, flood fraction and every predictor's scores and counts;
* ``confusion_matrix.json`` / ``.png``: the summed confusion matrices;
* ``best_*.png`` / ``worst_*.png``: panels of the chips with the highest/lowest model IoU;
* ``reliability.png``: the reliability diagram of the model's probabilities over the same
  valid pixels, whose expected calibration error (ECE) is in metrics.json's
  ``calibration`` (`floodlab.predict.calibration`);
* ``model_card.md``: the run's model card with these scores (`floodlab.predict.model_card`).

Every score is masked by validity: a pixel counts when its label is valid and every input
band has data. The baselines see exactly those pixels: Otsu thresholds each chip's own SAR
(VV) values, in the store's units, at the threshold found over the chip's pixels with data
(water below it); all-water predicts water at every valid pixel.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from floodlab.data import sample as S
from floodlab.errors import DataError, OutputPathError
from floodlab.io import write_json
from floodlab.metrics import keys
from floodlab.predict.calibration import write_reliability
from floodlab.predict.chips import DEFAULT_OVERLAP, DEFAULT_WINDOW, ChipPredictor
from floodlab.predict.report import write_confusion, write_csv, write_panel
from floodlab.predict.scoring import (
    ALL_WATER,
    MODEL,
    PANELS_EACH,
    WITH_OPTICAL,
    SplitScores,
    ranked,
)
from floodlab.predict.threshold import ThresholdSearch, parse_threshold
from floodlab.predict.tta import TTA_MODES, transforms, with_tta
from floodlab.tracking.mlflow_runs import log_evaluation

log = logging.getLogger(__name__)

RESAMPLES = 1000  # bootstrap resamples of the images
LABEL_SOURCES = ("hand", "weak")


def choose_label_sources(
    requested: Sequence[str] | None, trained_on: Sequence[str], store: Any
) -> list[str]:
    """The label sources to score.

    Args:
        requested: ``--label-sources`` (None: the default).
        trained_on: the run's ``data.label_sources``.
        store: the open store evaluated on.

    Returns:
        `requested`, or by default the sources the run trains on that the store has.

    Raises:
        DataError: an unknown source, one the store lacks, or (by default) none in common;
            the message names the sources the store has.
    """
    from floodlab.data.load.dataset import LABEL_ARRAY

    present = set(np.unique(store.label_sources).tolist())
    have = [s for s in LABEL_SOURCES if s in present and LABEL_ARRAY[s] in store.modalities]
    if requested is not None:
        unknown = [s for s in requested if s not in LABEL_SOURCES]
        if unknown or not requested:
            raise DataError(
                f"--label-sources: choose among {list(LABEL_SOURCES)}, but got {list(requested)}"
            )
        missing = [s for s in requested if s not in have]
        if missing:
            raise DataError(
                f"--label-sources: store {store.path} has no {missing} labels; it has {have}"
            )
        return list(dict.fromkeys(requested))
    chosen = [s for s in trained_on if s in have]
    if not chosen:
        raise DataError(
            f"the run trains on {list(trained_on)} labels, but store {store.path} has only "
            f"{have}; choose what to score with --label-sources"
        )
    return chosen


def evaluate_run(
    ref: str | Path,
    *,
    split: str | None = None,
    store: str | None = None,
    label_sources: Sequence[str] | None = None,
    without_optical: bool = False,
    checkpoint: str = "best",
    root: str | Path = "runs",
    batch_size: int = 8,
    window: int = DEFAULT_WINDOW,
    overlap: int = DEFAULT_OVERLAP,
    threshold: float | str = 0.5,
    tta: str = "none",
    device: str = "cpu",
    resamples: int = RESAMPLES,
    seed: int = 0,
    progress: Callable[[int], Any] | None = None,
    overwrite: bool = False,
    progress_total: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Evaluate a run's checkpoint on every valid pixel of a split and write the reports.

    The reports go to ``<run>/eval/<split>/`` (`RunDir.eval_dir`; evaluated on another
    store: ``eval/<split>-on-<store>/``); the module docstring lists them. A run tracked
    in MLflow (``logging.mlflow``) gets every file of that folder as artefacts, under
    ``eval/<folder name>/``.

    Args:
        ref: the run (directory, ``<experiment>/<run>`` or ``<experiment>/latest``).
        split: the split; default the spec's `data.test_split`.
        store: another converted store to evaluate on (the run's normalisation is kept).
        label_sources: flood labels to score ("hand", "weak"); default those the run
            trains on that the store has.
        without_optical: FLoRA: report only the SAR-alone predictions.
        checkpoint: "best", "latest" or a checkpoint file.
        root: the runs root.
        batch_size: chips (or windows) per forward pass.
        window: chips up to this side are predicted in one pass, larger ones in blended
            windows of this side.
        overlap: overlap of the blended windows (at most window // 2).
        threshold: probability from which a pixel is water, or the name of another
            split to choose it on (``"val"``: the threshold of the best mean per-image IoU
            on the validation split, `floodlab.predict.threshold`); the choice is saved
            in the report as ``threshold_choice``.
        tta: test-time augmentation of the model ("none", "flips", "dihedral"; see
            `floodlab.predict.tta`): its outputs averaged over flipped and turned inputs.
            Reports of a mode other than "none" go to ``eval/<split>-tta-<mode>/``.
        device: "cpu", "cuda" or "auto".
        resamples: bootstrap resamples of the images for the 95% intervals.
        seed: seed of the bootstrap resampling.
        progress: called with the number of images done after each batch.
        overwrite: replace the reports of an earlier evaluation of the same split.
        progress_total: called once with the number of images, before the first batch.

    Returns:
        The report (what metrics.json holds) with ``files``: name -> written path.

    Raises:
        DataError: label sources the store lacks, or bands/chips the run needs missing.
        OutputPathError: reports of an earlier evaluation exist and `overwrite` is off.
    """
    from floodlab.data.load.dataset import FloodDataset
    from floodlab.data.load.store import open_store
    from floodlab.predict.restore import load_trained

    if tta not in TTA_MODES:  # refused before the run is read
        raise DataError(f"--tta: unknown mode {tta!r}; choose from {list(TTA_MODES)}")
    try:
        threshold = parse_threshold(threshold)
    except ValueError as e:
        raise DataError(f"--threshold: {e}") from None
    trained = load_trained(ref, root=root, checkpoint=checkpoint)
    spec, task = trained.spec, trained.task
    data = spec.data.model_copy(update={"store": store}) if store else spec.data
    split = split or data.test_split
    if threshold == split:
        raise DataError(
            f"--threshold {threshold}: a threshold chosen on the split it is scored on "
            "flatters the model; choose it on another split (the validation split: "
            f"--threshold {spec.data.val_split})"
        )
    out_dir = trained.run.eval_dir(split, store, tta, threshold)
    if (out_dir / "metrics.json").exists() and not overwrite:
        raise OutputPathError(
            f"{out_dir}: holds the reports of an earlier evaluation of split '{split}'; pass "
            "--overwrite to replace them"
        )
    opened = open_store(data.store_path)
    if data.label == "flood":
        chosen = choose_label_sources(label_sources, data.label_sources, opened)
        data = data.model_copy(update={"label_sources": chosen})
    elif label_sources:
        raise DataError(f"--label-sources: a run with data.label: {data.label} has no flood labels")
    dataset = FloodDataset(
        data,
        split,
        train=False,
        seed=spec.seed,
        whole_chip=True,
        normalized=False,
        norm=trained.normalization or None,  # the parameters the model was trained with
    )
    params = dataset.norm
    seg = data.label in ("flood", "cloud")
    fusing = "with_optical" in inspect.signature(task.predict).parameters
    fuse = fusing and bool(data.optical_bands) and not without_optical
    translation = _translation_output(spec.model.kind) if data.target_bands else None
    outputs = (("prob",) if seg else ()) + ((translation,) if translation else ())
    chips = _chip_models(task, data, outputs, fuse, (window, overlap, batch_size), tta, device)
    choice: dict[str, Any] | None = None
    if isinstance(threshold, str):
        if not seg:
            raise DataError(f"--threshold {threshold}: the run predicts no mask to threshold")
        choice = _choose_threshold(trained, data, threshold, chips[MODEL], batch_size)
        threshold = float(choice["chosen"])
    scores = SplitScores(data, opened.sar_units, threshold, params, translation)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    if progress_total is not None:
        progress_total(len(dataset))
    with torch.no_grad():
        for batch in loader:
            image = batch[S.IMAGE].numpy()  # (B, C, H, W) physical, NaN at nodata
            bands = _sample_bands(batch, data)
            outs = {MODEL: _predict(chips[MODEL], image, bands, params)}
            if WITH_OPTICAL in chips:
                stacked = np.concatenate([image, batch[S.OPTICAL].numpy()], axis=1)
                outs[WITH_OPTICAL] = chips[WITH_OPTICAL](
                    stacked, functools.partial(_fused_normalize, params=params, bands=bands[0])
                )
            scores.add(batch, outs, dataset)
            if progress is not None:
                progress(int(image.shape[0]))

    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "run": trained.run.where,
        "checkpoint": str(trained.checkpoint),
        "epoch": trained.epoch,
        "split": split,
        "store": data.store_path,
        "sar_units": opened.sar_units,
        "label_sources": list(data.label_sources) if data.label == "flood" else [],
        "images": scores.images,
        "threshold": threshold,
        **({"threshold_choice": choice} if choice else {}),
        "evaluation": _evaluation_info(chips[MODEL], dataset.chip_hw, params, tta),
        **scores.report(resamples, seed),
    }
    files: dict[str, str] = {"metrics": str(out_dir / "metrics.json")}
    if scores.rows:
        write_csv(out_dir / "per_image.csv", scores.rows)
        files["per_image"] = str(out_dir / "per_image.csv")
        totals = {n: c.sum(axis=0) for n, c in scores.count_arrays().items()}
        json_path, png_path = write_confusion(out_dir, totals)
        files["confusion_matrix"], files["confusion_png"] = str(json_path), str(png_path)
        for p in _panels(out_dir, dataset, scores.rows, scores.masks, opened.sar_units):
            files[p.stem] = str(p)
    if report.get("calibration"):
        what = "cloud" if data.label == "cloud" else "water"
        title = f"{spec.name}: predicted {what} probability, {split} split"
        files["reliability"] = str(
            write_reliability(out_dir / "reliability.png", report["calibration"], title)
        )
    files["model_card"] = str(_write_card(out_dir, trained, report))
    write_json(out_dir / "metrics.json", report)
    report["files"] = files
    # Last, so that MLflow gets every file the evaluation wrote.
    log_evaluation(trained.run.path, out_dir)
    trained.run.push()  # a run on object storage: the reports go to its URL
    return report


def _choose_threshold(
    trained: Any, data: Any, split: str, chips: ChipPredictor, batch_size: int
) -> dict[str, Any]:
    """The model's threshold of the best mean per-image IoU on `split` (and the search)."""
    from floodlab.data.load.dataset import FloodDataset

    log.info("choosing the model's threshold on split '%s'", split)
    dataset = FloodDataset(
        data,
        split,
        train=False,
        seed=trained.spec.seed,
        whole_chip=True,
        normalized=False,
        norm=trained.normalization or None,
    )
    if len(dataset) == 0:
        raise DataError(f"--threshold {split}: split '{split}' of {data.store_path} is empty")
    search = ThresholdSearch()
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            image = batch[S.IMAGE].numpy()
            out = _predict(chips, image, _sample_bands(batch, data), dataset.norm)
            search.add(out["prob"][:, 0], batch[S.MASK].numpy() > 0.5, batch[S.VALID].numpy())
    try:
        return search.record(split)
    except ValueError as e:
        raise DataError(f"--threshold {split}: {e}") from None


def _write_card(out_dir: Path, trained: Any, report: dict[str, Any]) -> Path:
    """model_card.md of the evaluated run beside its reports."""
    from floodlab.io import atomic_write_text
    from floodlab.predict.model_card import card_path, trained_card_text

    model = trained.task.nets["model"]
    parameters = {
        "model": sum(p.numel() for p in model.parameters()),
        "trained": trained.task.num_parameters(),
    }
    text = trained_card_text(trained, parameters, report)
    path = card_path(out_dir)
    atomic_write_text(path, text)
    return path


def _translation_output(kind: str) -> str | None:
    """The output key of a family's translation ("rgb": FLoRA, "optical": CycleGAN)."""
    return {"flora": "rgb", "cyclegan": "optical"}.get(kind)


def _chip_models(
    task: Any,
    data: Any,
    outputs: tuple[str, ...],
    fuse: bool,
    tiling: tuple[int, int, int],
    tta: str,
    device: str,
) -> dict[str, ChipPredictor]:
    """The model from its image alone and, when `fuse`, fused with its optical prior.

    `tiling` is (window, overlap, batch size); `tta` the test-time augmentation of both.
    """
    from floodlab.predict.predictor import TaskPredictFn

    def chip_model(optical_from: int | None) -> ChipPredictor:
        fn = with_tta(TaskPredictFn(task, device, optical_from=optical_from), tta)
        return ChipPredictor(fn, outputs, *tiling)

    models = {MODEL: chip_model(None)}
    if fuse:
        models[WITH_OPTICAL] = chip_model(len(data.image_bands))
    return models


def _sample_bands(batch: dict[str, Any], data: Any) -> list[tuple[str, ...]]:
    """The image bands of each sample (its own band in band-agnostic mode)."""
    n = int(batch[S.IMAGE].shape[0])
    if S.BAND in batch:
        return [(str(b),) for b in batch[S.BAND]]
    return [tuple(data.image_bands)] * n


def _predict(
    chips: ChipPredictor,
    image: np.ndarray,
    bands: list[tuple[str, ...]],
    params: dict[str, Any],
) -> dict[str, np.ndarray]:
    """The model's outputs for (B, C, H, W) physical chips whose samples may differ in band."""
    from floodlab.data.load.normalize import normalize_with_params

    groups: dict[tuple[str, ...], list[int]] = {}
    for i, b in enumerate(bands):
        groups.setdefault(b, []).append(i)
    out: dict[str, np.ndarray] = {}
    for group, index in groups.items():
        norm = functools.partial(
            normalize_with_params, params=params, which="image", bands=list(group)
        )
        for k, v in chips(image[index], norm).items():
            out.setdefault(k, np.empty((image.shape[0], *v.shape[1:]), np.float32))[index] = v
    return out


def _fused_normalize(
    x: np.ndarray, *, params: dict[str, Any], bands: tuple[str, ...]
) -> np.ndarray:
    """Normalise image bands then optical prior stacked along channels (C_i + C_o, h, w)."""
    from floodlab.data.load.normalize import normalize_with_params

    c = len(bands)
    return np.concatenate(
        [
            normalize_with_params(x[:c], params, "image", bands=list(bands)),
            normalize_with_params(x[c:], params, "optical"),
        ]
    )


def _evaluation_info(
    chips: ChipPredictor, chip_hw: tuple[int, int], params: dict[str, Any], tta: str = "none"
) -> dict[str, Any]:
    """How the chips were predicted and normalised (saved with the report)."""
    windowed = chips.windowed(*chip_hw)
    per_sample = any(c.get("per_patch") for c in params.get("image", {}).get("coefficients", []))
    how = (
        f"blended windows of {chips.window} px overlapping by {chips.overlap} px, as in scene "
        "prediction"
        if windowed
        else "one fully convolutional pass over each whole chip"
    )
    passes = len(transforms(tta))
    if passes > 1:
        how += f", averaged over {passes} flipped and turned copies ({tta} test-time augmentation)"
    norm = f"the run's saved normalisation (data.normalize: {params.get('mode')})"
    if per_sample:
        norm += ", each " + ("window" if windowed else "whole chip") + " by its own statistics"
    return {
        "pixels": "every valid pixel of every whole chip",
        "chip_shape": list(chip_hw),
        "prediction": how,
        "window": chips.window,
        "overlap": chips.overlap,
        "normalization": norm,
        "tta": tta,
        "tta_passes": passes,
    }


def _panels(
    out_dir: Path,
    dataset: Any,
    rows: list[dict[str, Any]],
    masks: dict[int, dict[str, np.ndarray]],
    sar_units: str,
) -> list[Path]:
    """best_<k>_<id>.png and worst_<k>_<id>.png (model IoU), stale panels removed first."""
    for old in list(out_dir.glob("best_*.png")) + list(out_dir.glob("worst_*.png")):
        old.unlink()
    order = ranked(rows)
    n = min(PANELS_EACH, max(1, len(order) // 2))  # best and worst never overlap
    picks = [("best", k, i) for k, i in enumerate(order[:n], 1)]
    picks += [("worst", k, i) for k, i in enumerate(reversed(order[-n:]), 1) if len(order) > 1]
    written = []
    for tag, k, i in picks:
        sample = dataset[i]
        row = rows[i]
        shown = {name: m for name, m in masks[i].items() if name != ALL_WATER}
        title = f"{row['id']}  " + "  ".join(
            f"IoU {name}={row[f'{keys.IOU}_{name}']:.3f}"
            for name in shown
            if np.isfinite(row[f"{keys.IOU}_{name}"])
        )
        sar = sample.get(S.SAR_DB)
        written.append(
            write_panel(
                out_dir / f"{tag}_{k}_{row['id']}.png",
                sar_db=None if sar is None else np.asarray(sar),
                truth=np.asarray(sample[S.MASK]) > 0.5,
                valid=np.asarray(sample[S.VALID]).astype(bool),
                predictions=shown,
                title=title,
                sar_units=sar_units,
            )
        )
    return written
