"""The sections of a model card (`floodlab.predict.model_card`), each from the run's files.

Every function returns Markdown lines: data and splits, bands and units, normalisation,
training recipe, evaluation beside the baselines, the exported model, intended use and
known limits; and the facts they share (units of a band, the training store's attributes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from floodlab.bands import DERIVED_FORMULAS, S1_BANDS, S1_PRE_BANDS, S2_BANDS, is_sar
from floodlab.predict.predictor import model_bands

log = logging.getLogger(__name__)

SCALED = "scaled_0_255"
FEW_IMAGES = 30  # fewer evaluated images than this: the intervals are wide
CALIBRATED_ECE = 0.05  # an ECE above this is called uncalibrated
# Scores of the evaluation table: (report key, heading).
SCORES: tuple[tuple[str, str], ...] = (
    ("mean_image_iou", "mean image IoU"),
    ("iou", "pooled IoU"),
    ("f1", "F1"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("accuracy", "accuracy"),
)


def band_unit(band: str, sar_units: str = "dB") -> str:
    """The unit a band's values are in as floodlab reads them (SAR in `sar_units`)."""
    from floodlab.data.cards import DEGREES, INDEX, METRES, REFLECTANCE

    if band in S1_BANDS or band in S1_PRE_BANDS or band == "MAGNITUDE":
        return sar_units
    if band == "RATIO":
        return f"unitless (ratio of {sar_units} values)"
    if band == "VV_DIFF":
        return f"{sar_units} difference"
    if band == "VV_LOGRATIO":
        return "log10 of an intensity ratio"
    if band in ("NDVI", "NDWI", "MNDWI"):
        return INDEX
    if band in S2_BANDS:
        return REFLECTANCE
    return {"SLOPE": DEGREES, "DTM": METRES}.get(band, "")


def derived_formulas(bands: Sequence[str]) -> dict[str, str]:
    """The formulas of the derived bands among `bands`."""
    return {b: DERIVED_FORMULAS[b] for b in bands if b in DERIVED_FORMULAS}


def store_attrs(path: str | Path) -> dict[str, Any]:
    """A store's attributes, {} when it is not there."""
    from floodlab.data.load.store import read_attrs

    return read_attrs(path) if Path(path).exists() else {}


def training_sar_units(spec: Any) -> str:
    """The units of the training store's SAR ("dB", "scaled_0_255"); "dB" when unknown."""
    units = store_attrs(spec.data.store_path).get("provenance", {}).get("sar_units") or {}
    return str(units.get("stored", "dB"))


def _is_synthetic(spec: Any, attrs: Mapping[str, Any]) -> bool:
    """Whether the training store was converted from floodlab's synthetic generator."""
    from floodlab.data.synth import MARKER as SYNTH_MARKER

    if spec.data.synthetic is not None:
        return True
    source = attrs.get("provenance", {}).get("source")
    if not source:
        return False
    folder = Path(str(source))
    return any((p / SYNTH_MARKER).is_file() for p in [folder, *list(folder.parents)[:3]])


def _georeferenced(path: str | Path) -> bool | None:
    """Whether the store's first chip has a CRS; None when the store cannot be read."""
    from floodlab.data.load.store import open_store
    from floodlab.errors import FloodlabError

    try:
        store = open_store(path)
        return bool(str(store.crs(0)).strip()) if len(store) else None
    except (FloodlabError, OSError, KeyError, IndexError):
        return None


def _cell(metric: Mapping[str, Any], key: str) -> str:
    """``0.512 [0.451, 0.570]``: a score with its 95% interval (as `floodlab evaluate`)."""
    value = metric.get(key)
    if value is None:
        return "n/a"
    interval = (metric.get("ci95") or {}).get(key)
    if not interval or None in interval:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _fields(model: Any) -> str:
    """A model spec's fields, ``name: value; ...`` (without kind and weights files)."""
    values = model.model_dump(exclude={"kind", "weights", "encoder_weights"})
    return "; ".join(f"{k}: {v}" for k, v in values.items())


def data_section(
    spec: Any, attrs: Mapping[str, Any], report: Mapping[str, Any] | None
) -> list[str]:
    from floodlab.data.load.summary import describe_splits
    from floodlab.data.registry import get_dataset

    data = spec.data
    lines = ["## Data and splits", ""]
    try:
        card = get_dataset(data.dataset).card
        lines.append(f"- Dataset: {card.title} (`{data.dataset}`); licence: {card.licence}")
    except KeyError:
        card = None
        lines.append(f"- Dataset: `{data.dataset}`")
    if not attrs:
        lines += [
            f"- Store: `{data.store_path}` is not available here, so its chips, splits and "
            "provenance cannot be shown.",
            "",
        ]
        return lines
    prov = attrs.get("provenance", {})
    h, w = attrs.get("chip_shape", ["?", "?"])
    lines.append(
        f"- Store: `{data.store_path}`: {attrs.get('num_chips')} chips of {h}x{w} px, converted "
        f"{prov.get('created')} from `{prov.get('source')}` (converter "
        f"{prov.get('converter_version')})"
    )
    if _is_synthetic(spec, attrs):
        lines.append(
            "- **Synthetic data**: the store was converted from floodlab's real-format "
            "synthetic generator, not from real acquisitions."
        )
    roles = {data.train_split: "training", data.val_split: "validation", data.test_split: "test"}
    counts = attrs.get("split_counts", {})
    lines += ["", "| split | chips | used for |", "|---|---:|---|"]
    lines += [f"| {s} | {n} | {roles.get(s, '-')} |" for s, n in counts.items()]
    lines.append("")
    if "splits" in prov:
        lines.append(f"- How the splits were made: {describe_splits(prov['splits'])}.")
    if card is not None:
        note = f" {card.splits.note}." if card.splits.note else ""
        lines.append(f"- A split never divides a group; a group is {card.splits.group}.{note}")
    sources = attrs.get("label_source_counts", {})
    if data.label == "flood":
        lines.append(
            f"- Labels trained on: {', '.join(data.label_sources)} (chips per label source in "
            f"the store: {', '.join(f'{k} {v}' for k, v in sources.items()) or 'n/a'})"
        )
    balance = attrs.get("class_balance", {}).get("label", {}).get(data.train_split)
    if balance:
        lines.append(
            f"- Positive (water or cloud) share of the training split's labelled pixels: "
            f"{balance['fractions'].get('1', 0.0):.1%}"
        )
    if report and str(report.get("store")) != data.store_path:
        lines.append(f"- Evaluated on another store: `{report.get('store')}`")
    return [*lines, ""]


def bands_section(spec: Any, sar_units: str) -> list[str]:
    bands = model_bands(spec)
    lines = ["## Bands and units", "", "| # | band | unit | formula |", "|---:|---|---|---|"]
    formulas = derived_formulas(bands)
    for i, b in enumerate(bands, start=1):
        lines.append(f"| {i} | {b} | {band_unit(b, sar_units)} | {formulas.get(b, '-')} |")
    lines.append("")
    if spec.data.band_agnostic:
        lines.append(
            "- Band-agnostic training: every band of a patch was a single-channel sample; the "
            f"model predicts from {bands[0]} alone (as in its validation)."
        )
    if sar_units == SCALED:
        lines.append(
            f"- SAR is `{SCALED}`: each patch was stretched from its own min..max to 0..255, "
            "so absolute backscatter (dB) is lost and only contrasts within a patch mean "
            "anything. Give the model SAR stretched the same way; dB thresholds and fixed dB "
            "ranges do not apply."
        )
    elif any(is_sar(b) for b in bands):
        lines.append("- SAR backscatter in dB (Sentinel-1 GRD, sigma0).")
    lines.append("- Nodata: NaN (any non-finite value); such pixels are 0 after normalisation.")
    return [*lines, ""]


def normalization_section(spec: Any, params: Mapping[str, Any]) -> list[str]:
    from floodlab.data.load.normalize import saved_coefficients

    bands = model_bands(spec)
    lines = [
        "## Normalisation",
        "",
        f"Mode `{params.get('mode', spec.data.normalize)}` (data.normalize), saved with the "
        "run and applied per band, then nodata -> 0:",
        "",
        "| band | rule |",
        "|---|---|",
    ]
    if not params:
        return [*lines[:3], "The run holds no normalization.json.", ""]
    for band, c in zip(bands, saved_coefficients(params, "image", bands), strict=True):
        if c.get("per_patch"):
            rule = "(x - mean) / std of the sample's (window's) own valid pixels"
        else:
            clip = f"clip to [{c['lo']:g}, {c['hi']:g}], then " if c.get("lo") is not None else ""
            rule = f"{clip}x * {c['scale']:.6g} + {c['offset']:.6g}"
        lines.append(f"| {band} | {rule} |")
    return [*lines, ""]


def recipe_section(
    run: Any, spec: Any, parameters: Mapping[str, int], checkpoint: Path | str, epoch: int
) -> list[str]:
    from floodlab.specs.loss import active_weights

    t, o, s = spec.trainer, spec.optim, spec.schedule
    losses = []
    for name in ("seg", "rec", "gan"):
        weights = active_weights(getattr(spec.loss, name))
        if weights:
            losses.append(f"{name}: " + ", ".join(f"{k} {v:g}" for k, v in weights.items()))
    if spec.loss.distill.weight > 0:
        losses.append(f"feature distillation {spec.loss.distill.weight:g}")
    optim = f"{o.name}, lr {o.lr:g}, weight decay {o.weight_decay:g}"
    optim += f", momentum {o.momentum:g}" if o.name == "sgd" else f", betas {tuple(o.betas)}"
    sched = {
        "cosine": f"eta_min {s.eta_min:g}",
        "cosine_warm_restarts": f"t0 {s.t0}, t_mult {s.t_mult}, eta_min {s.eta_min:g}",
        "plateau": f"on {s.monitor} ({s.mode}), factor {s.factor:g}, patience {s.patience}",
        "step": f"every {s.step_size} epochs x {s.gamma:g}",
        "constant": "",
    }[s.kind]
    summary = run.read_summary()
    a = spec.data.augment
    lines = [
        "## Training recipe",
        "",
        f"- Family: `{spec.model.kind}` ({_fields(spec.model)})",
        f"- Parameters: {parameters.get('model', 0):,} in the model network"
        + (
            f", {parameters['inference']:,} in the SAR-only inference graph"
            if "inference" in parameters
            else ""
        )
        + f", {parameters.get('trained', 0):,} trained in all",
        f"- Loss weights: {'; '.join(losses) or 'none'}"
        + (f"; gradient decoupling {spec.loss.decouple}" if spec.loss.decouple != "none" else ""),
    ]
    if spec.distill is not None:
        d = spec.distill
        teacher = (
            f"the teacher run `{d.teacher.run}`"
            if d.teacher is not None and d.teacher.run is not None
            else f"a `{d.teacher_arch or 'unet'}` teacher"
        )
        lines.append(
            f"- Distillation from {teacher}: alpha {d.alpha:g}, beta "
            f"{d.beta:g}, temperature {d.temperature:g} (the teacher is not part of the model)"
        )
    lines += [
        f"- Optimiser: {optim}",
        f"- Schedule: {s.kind}"
        + (f" ({sched})" if sched else "")
        + (f", {s.warmup_epochs} warm-up epochs" if s.warmup_epochs else ""),
        f"- Epochs: {t.epochs} planned, {summary.get('epochs_completed', '?')} completed; "
        f"checkpoint of epoch {epoch} (`{str(checkpoint).rstrip('/').split('/')[-2]}`, best by "
        f"{t.checkpoint_metric})"
        + (f"; early stopping on {t.early_stopping.metric}" if t.early_stopping else ""),
        f"- Batch: {t.batch_size} per worker x {t.num_workers} worker(s) of "
        f"{spec.data.patch_size}x{spec.data.patch_size} px patches; precision {t.precision}"
        + (f", gradient clip {t.grad_clip:g}" if t.grad_clip else ""),
        f"- Augmentation: flips {a.flips}, rot90 {a.rot90}, brightness {a.brightness:g}, "
        f"contrast {a.contrast:g}",
        f"- Seed {spec.seed}; spec hash `{run.spec_hash()}` (the resolved spec is the run's "
        "spec.yaml)",
    ]
    return [*lines, ""]


def evaluation_section(report: Mapping[str, Any] | None, run: Any) -> list[str]:
    lines = ["## Evaluation", ""]
    if not report:
        return [
            *lines,
            f"Not evaluated yet: `floodlab evaluate {run.path}` scores the test split and "
            "writes its model card with the scores.",
            "",
        ]
    info = report.get("evaluation", {})
    labels = "+".join(report.get("label_sources", [])) or "-"
    lines += [
        f"Split `{report['split']}` of `{report.get('store')}`: {report['images']} whole chips, "
        f"labels {labels}, threshold {report.get('threshold')}; {info.get('prediction', '')}.",
        *_threshold_choice(report.get("threshold_choice")),
        "",
        "| predictor | " + " | ".join(h for _, h in SCORES) + " | valid pixels |",
        "|---|" + "---:|" * (len(SCORES) + 1),
    ]
    for name, m in report.get("predictors", {}).items():
        pixels = sum(int(m.get(k, 0)) for k in ("tp", "fp", "fn", "tn"))
        lines.append(
            f"| {name} | " + " | ".join(_cell(m, k) for k, _ in SCORES) + f" | {pixels:,} |"
        )
    defs = report.get("definitions", {})
    lines.append("")
    for pair, d in report.get("differences", {}).items():
        iou = d["mean_image_iou"]
        lo, hi = iou["ci95"]
        lines.append(
            f"- {pair}: mean image IoU {iou['value']:+.3f} [{lo:+.3f}, {hi:+.3f}] (paired "
            f"bootstrap); higher IoU on {100 * d['images_better']:.0f}% of images"
        )
    if "ci95" in defs:
        lines.append(f"- [low, high]: {defs['ci95']}")
    for name, m in report.get("predictors", {}).items():
        if m.get("definition"):
            lines.append(f"- {name}: {m['definition']}")
    for key, _ in SCORES:
        if key in defs:
            lines.append(f"- {key}: {defs[key]}")
    for name, cal in report.get("calibration", {}).items():
        if cal.get("ece") is not None:
            lines.append(
                f"- Calibration of {name}: ECE {cal['ece']:.3f} over {cal['pixels']:,} valid "
                "pixels (reliability.png beside the evaluation's reports)"
            )
    if "ece" in defs:
        lines.append(f"- ece: {defs['ece']}")
    return [*lines, ""]


def _threshold_choice(choice: Mapping[str, Any] | None) -> list[str]:
    """The line saying where the model's threshold was chosen, if it was."""
    if not choice:
        return []
    scores = dict(zip(choice["grid"], choice["scores"], strict=True))
    best, at_half = scores.get(choice["chosen"]), scores.get(0.5)
    compare = f" (at 0.5: {at_half:.3f})" if at_half is not None else ""
    return [
        "",
        f"The threshold {choice['chosen']} was chosen on split `{choice['split']}` "
        f"({choice['images']} chips): the best mean per-image IoU there, {best:.3f}{compare}, "
        f"of thresholds {choice['grid'][0]} to {choice['grid'][-1]}.",
    ]


def export_section(export: Mapping[str, Any]) -> list[str]:
    inp = export["input"]
    outs = ", ".join(f"`{k}` {v['shape']}: {v['meaning']}" for k, v in export["outputs"].items())
    return [
        "## Exported model",
        "",
        f"- File: `{export['file']}` ({export['format']}), sidecar `{export['file']}.json`",
        f"- Input `{inp['name']}` {inp['shape']} {inp['dtype']}: bands "
        f"{', '.join(inp['bands'])} in physical units, NaN at nodata; the normalisation above "
        "is inside the graph",
        f"- Outputs: {outs}",
        f"- Threshold: water where `prob` >= {export['threshold']}",
        f"- Checked after writing: largest difference from the run's model "
        f"{export['check']['max_abs_diff']:.2g} on an input of shape "
        f"{export['check']['input_shape']}",
        "",
    ]


def use_and_limits(
    spec: Any,
    attrs: Mapping[str, Any],
    sar_units: str,
    report: Mapping[str, Any] | None,
) -> list[str]:
    data, bands = spec.data, model_bands(spec)
    what = "cloud" if data.label == "cloud" else "flood water"
    lines = [
        "## Intended use",
        "",
        f"Research maps of {what} from {', '.join(bands)} "
        + (
            "(from SAR alone: the optical prior is a training-time input only) "
            if spec.model.kind == "flora"
            else ""
        )
        + f"on scenes like its training data, predicted in windows of about "
        f"{data.patch_size} px; for comparing models and methods, not for emergency "
        "decisions without validation on the region and sensor at hand.",
        "",
        "## Known limits",
        "",
    ]
    limits = []
    if attrs and _is_synthetic(spec, attrs):
        limits.append(
            "Trained on synthetic data: the scores show the pipeline works, not how the model "
            "does on real scenes."
        )
    if data.normalize == "per_patch":
        limits.append(
            "Trained on per-patch standardised input: every window is standardised by its own "
            "pixels, so a window of only water or only land is stretched like a mixed one and "
            "the absolute backscatter level is ignored; results depend on the window size."
        )
    if sar_units == SCALED:
        limits.append(
            "SAR stretched per patch to 0..255: absolute dB is unknown, so the model cannot "
            "use calibrated backscatter levels and must be fed the same stretch."
        )
    split = attrs.get("provenance", {}).get("splits", {})
    group = ""
    try:
        from floodlab.data.registry import get_dataset

        group = get_dataset(data.dataset).card.splits.group
    except KeyError:
        pass
    if "patch" in group or split.get("method", "official") != "official":
        limits.append(
            "Patch-level or random splits: neighbouring patches of one scene can fall into "
            "training and test, so test scores are optimistic for unseen regions."
        )
    if attrs and _georeferenced(data.store_path) is False:
        limits.append(
            "The source chips carry no georeferencing (no CRS): maps of them cannot be placed "
            "on the ground."
        )
    if "weak" in data.label_sources and data.label == "flood":
        limits.append("Trained partly on weak (Otsu) labels, which inherit Otsu's errors.")
    if report:
        if int(report.get("images", 0)) < FEW_IMAGES:
            limits.append(
                f"Evaluated on {report.get('images')} images only: the intervals are wide, and "
                "differences inside them are noise."
            )
        ece = report.get("calibration", {}).get("model", {}).get("ece")
        if ece is not None and ece > CALIBRATED_ECE:
            limits.append(
                f"Probabilities are not calibrated (ECE {ece:.3f}): use the mask, or "
                "recalibrate before reading probabilities as frequencies."
            )
    limits.append("The threshold (0.5 unless set) was not tuned on validation data.")
    if any(is_sar(b) for b in bands):
        limits.append(
            "C-band SAR misses water under vegetation and in built-up areas (double bounce) "
            "and confuses smooth dry surfaces (tarmac, sand, radar shadow) with water."
        )
    return [*lines, *(f"- {x}" for x in limits), ""]
