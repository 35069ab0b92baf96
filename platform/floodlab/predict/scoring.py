"""Per-image scores of every predictor over a split's whole chips, and the baselines.

`SplitScores` counts, for each whole chip and each predictor (the model; FLoRA fused with
its optical prior; Otsu; all-water), the confusion counts over the chip's valid pixels,
writes one per-image row per chip, keeps the masks of the best and worst chips for panels,
and turns the counts into the report's scores with bootstrap intervals
(`floodlab.metrics.bootstrap`). The model's probabilities over the same pixels are binned
as they come (`floodlab.predict.calibration`) for its reliability diagram and ECE. Translations are scored by
`floodlab.predict.translation_scores`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from floodlab.data import sample as S
from floodlab.metrics import keys
from floodlab.metrics.bootstrap import (
    DEFINITIONS,
    bootstrap_intervals,
    paired_differences,
    summarise,
)
from floodlab.metrics.segmentation import confusion_counts, count_scores
from floodlab.predict.calibration import ECE, ECE_DEFINITION, CalibrationCounts

MODEL = "model"
WITH_OPTICAL = "model_with_optical"
OTSU = "otsu"
ALL_WATER = "all_water"
BRIGHTNESS = "brightness"
PANELS_EACH = 3  # best and worst images drawn


def predictor_definitions(label: str, sar_units: str, threshold: float) -> dict[str, str]:
    """What each predictor of the report is, in words (saved with the report)."""
    positive = "flood water" if label == "flood" else "cloud"
    return {
        MODEL: f"the run's model from its image bands alone; {positive} where its "
        f"probability >= {threshold}",
        WITH_OPTICAL: "FLoRA fusing its optical prior (Sentinel-2 of the same acquisition); "
        f"{positive} where its probability >= {threshold}",
        OTSU: "Otsu's threshold of each chip's own VV values in the store's units "
        f"({sar_units}), water below it; a monotonic stretch (scaled_0_255) keeps Otsu's "
        "split, so it is valid in either unit",
        ALL_WATER: f"every valid pixel predicted {positive}: IoU = the {positive} fraction, "
        "recall 1; the floor a model must beat",
        BRIGHTNESS: "cloud where the chip's mean visible reflectance (B2, B3, B4 among the "
        "image bands, else every image band) is above Otsu's threshold of that chip's own "
        "brightness: the label-free baseline a cloud model must beat",
    }


class SplitScores:
    """Per-image confusion counts of every predictor, rows, panels' masks and translation.

    Args:
        data: the evaluated `DataSpec` (label kind, target bands).
        sar_units: the store's SAR units (named in Otsu's definition).
        threshold: probability from which a pixel is predicted positive.
        params: the run's normalisation (the target's training means for the baseline).
        translation: the model's translation output ("rgb", "optical"), or None.

    Attributes:
        rows: one per-image CSV row per scored chip, in dataset order.
        masks: dataset index -> predictor -> (H, W) mask, for the best and worst chips.
        calibration: model predictor -> binned probabilities of its valid pixels.
        images: chips seen so far.
    """

    def __init__(
        self,
        data: Any,
        sar_units: str,
        threshold: float,
        params: dict[str, Any],
        translation: str | None,
    ):
        from floodlab.predict.translation_scores import TranslationScores, mean_image

        self.data, self.sar_units, self.threshold = data, sar_units, threshold
        self.seg = data.label in ("flood", "cloud")
        self.translation = translation
        self.rec = (
            TranslationScores(
                data.target_bands, mean_image(params), minus1_1=params.get("mode") == "minus1_1"
            )
            if translation
            else None
        )
        self.counts: dict[str, list[np.ndarray]] = {}
        self.sources: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.masks: dict[int, dict[str, np.ndarray]] = {}  # kept only for panel candidates
        self.calibration: dict[str, CalibrationCounts] = {}
        self.images = 0

    def add(
        self, batch: dict[str, Any], outs: dict[str, dict[str, np.ndarray]], dataset: Any
    ) -> None:
        """Score one batch of whole chips."""
        from floodlab.data.otsu import brightness_cloud_mask, otsu_water_mask
        from floodlab.predict.translation_scores import MODEL as REC_MODEL
        from floodlab.predict.translation_scores import ORACLE_WITH_OPTICAL

        n = int(batch[S.IMAGE].shape[0])
        if self.rec is not None and self.translation is not None:
            target = batch[S.TARGET].numpy()
            self.rec.update(REC_MODEL, outs[MODEL][self.translation], target)
            if WITH_OPTICAL in outs:
                self.rec.update(ORACLE_WITH_OPTICAL, outs[WITH_OPTICAL][self.translation], target)
        if not self.seg:
            self.images += n
            return
        truth = batch[S.MASK].numpy() > 0.5  # (B, H, W)
        valid = batch[S.VALID].numpy().astype(bool)
        preds = {name: out["prob"][:, 0] >= self.threshold for name, out in outs.items()}
        for name, out in outs.items():
            counts = self.calibration.setdefault(name, CalibrationCounts())
            counts.add(out["prob"][:, 0], truth, valid)
        if self.data.label == "flood" and S.SAR_DB in batch:
            preds[OTSU] = np.stack([otsu_water_mask(s) == 1 for s in batch[S.SAR_DB].numpy()])
        if self.data.label == "cloud":
            bands = list(self.data.image_bands)
            image = batch[S.IMAGE].numpy()  # physical reflectance (whole-chip evaluation)
            preds[BRIGHTNESS] = np.stack([brightness_cloud_mask(x, bands) for x in image])
        preds[ALL_WATER] = np.ones_like(truth)
        for i in range(n):
            index = self.images + i
            source = sample_source(dataset, index)
            row: dict[str, Any] = {"id": batch[S.ID][i], "source": source}
            if S.BAND in batch:
                row["band"] = batch[S.BAND][i]
            row["height"], row["width"] = truth.shape[1:]
            row[keys.VALID_PIXELS] = int(valid[i].sum())
            row["water_fraction"] = (
                float(truth[i][valid[i]].mean()) if valid[i].any() else float("nan")
            )
            for name, pred in preds.items():
                c = confusion_counts(pred[i], truth[i], valid[i]).numpy()
                self.counts.setdefault(name, []).append(c)
                for k, v in count_scores(c).items():
                    row[f"{k}_{name}"] = v
                for k, v in zip(keys.COUNTS, c, strict=True):
                    row[f"{k}_{name}"] = int(v)
            self.sources.append(source)
            self.rows.append(row)
            self.masks[index] = {name: pred[i] for name, pred in preds.items()}
        self.images += n
        keep_extremes(self.rows, self.masks)

    def count_arrays(self) -> dict[str, np.ndarray]:
        """predictor -> (N, 4) per-image counts (tp, fp, fn, tn)."""
        return {n: np.asarray(c, dtype=np.int64).reshape(-1, 4) for n, c in self.counts.items()}

    def report(self, resamples: int, seed: int) -> dict[str, Any]:
        """The report's predictors, by-source, definitions and translation sections."""
        out: dict[str, Any] = {}
        if self.seg:
            counts = self.count_arrays()
            intervals = bootstrap_intervals(counts, resamples=resamples, seed=seed)
            defs = predictor_definitions(self.data.label, self.sar_units, self.threshold)
            out["predictors"] = {
                name: {
                    **summarise(c),
                    **{k: int(v) for k, v in zip(keys.COUNTS, c.sum(axis=0), strict=True)},
                    "ci95": intervals[name],
                    "definition": defs[name],
                }
                for name, c in counts.items()
            }
            baselines = [b for b in (OTSU, BRIGHTNESS, ALL_WATER) if b in counts]
            out["differences"] = paired_differences(
                counts,
                [(m, b) for m in counts if m not in baselines for b in baselines],
                resamples=resamples,
                seed=seed,
            )
            sources = np.asarray(self.sources)
            out["by_source"] = {
                s: {name: summarise(c[sources == s]) for name, c in counts.items()}
                for s in sorted(set(self.sources))
            }
            out["calibration"] = {n: c.report() for n, c in self.calibration.items()}
            out["definitions"] = {
                **DEFINITIONS,
                ECE: ECE_DEFINITION,
                "ci95": f"95% percentile bootstrap interval over images: {resamples} resamples "
                f"of the images with replacement (seed {seed}), every score recomputed from "
                "the resampled images' counts; the same resamples for every predictor",
                "differences": "predictor minus baseline of the mean per-image IoU and the "
                "pooled IoU, with the 95% interval of the difference over the same resamples "
                "(paired), and images_better: the share of images where the predictor's IoU "
                "is higher",
            }
            out["bootstrap"] = {"resamples": resamples, "seed": seed, "level": 0.95}
        else:
            out["predictors"] = {}
        if self.rec is not None:
            headline, oracle = self.rec.report()
            out["translation"] = headline
            if oracle:
                out["oracle"] = oracle
        return out


def sample_source(dataset: Any, index: int) -> str:
    """The label source (hand/weak) of a dataset sample, "" when unknown."""
    try:
        pos = dataset.samples[index][0]
        return str(dataset.label_sources[pos])
    except (AttributeError, IndexError, TypeError):
        return ""


def ranked(rows: list[dict[str, Any]]) -> list[int]:
    """Row indices with a finite model IoU, best first (ties: more valid pixels first)."""
    scored = [i for i, r in enumerate(rows) if np.isfinite(r[f"{keys.IOU}_{MODEL}"])]
    return sorted(
        scored, key=lambda i: (-rows[i][f"{keys.IOU}_{MODEL}"], -rows[i][keys.VALID_PIXELS])
    )


def keep_extremes(rows: list[dict[str, Any]], masks: dict[int, dict[str, np.ndarray]]) -> None:
    """Drop kept masks of images that can no longer be among the best or worst few."""
    order = ranked(rows)
    keep = set(order[:PANELS_EACH] + order[-PANELS_EACH:])
    for i in [i for i in masks if i not in keep]:
        del masks[i]
