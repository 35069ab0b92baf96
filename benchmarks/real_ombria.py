"""Flood models trained and tested on real floods (OMBRIA), beside the baselines and the paper.

Converts the OMBRIA folder into a store (once), trains each flood spec of
``experiments/ombria_*.yaml`` on the official train split (val: 10 % of train, seeded)
through floodlab's Ray Train driver, evaluates it on the 70 official test patches with
``floodlab evaluate`` (whole 256 x 256 chips, SAR alone), and prints one table beside
Otsu on S1 (each patch's own threshold on the stretched post-event VV), all-water, and
the published figures (Drakonakis et al., IEEE JSTARS 2022, Table VII), then one JSON
line with every figure.

The figure is the paper's: the flood IoU of each test image, averaged over the images
(``mean_image_iou``; an image with no flood in label and prediction would be left out,
but every OMBRIA test mask has flood), with a 95 % bootstrap interval over images; the
pooled flood IoU (from the summed counts) is printed beside it, and so is each model's
difference from Otsu with its paired bootstrap interval (the same resamples for both) and
the share of test images where the model's IoU is higher.

Usage (from the project root, in the README's environment)::

    .venv/bin/python benchmarks/real_ombria.py --source PATH/TO/ombria [--full]
        [--specs resunet,resunet_bitemporal,flora,sarkd_teacher_agnostic,sarkd_teacher,sarkd_student]
        [--epochs N] [--runs DIR] [--store data/ombria.zarr] [--tta dihedral]
        [--threshold val]
        [--set PATH=VALUE ...]

``--source`` is the folder holding OmbriaS1/ (and OmbriaS2/). The default specs are the
CPU variants (small widths and crops, sized for a 2-core machine); ``--full``
runs the full GPU variants (``*_full.yaml``). ``--epochs`` shortens every spec (smoke
runs); ``--set`` overrides every spec as ``floodlab train --set`` does (the overrides are
printed in the JSON line); ``--evaluate-only`` evaluates each spec's latest run under
``--runs`` instead of training one (its training time: the recorded epoch seconds).
``--tta flips|dihedral`` and ``--threshold val`` evaluate each
model a second time, with test-time augmentation (its outputs averaged over 4 or 8 flipped
and turned copies of each patch) and with the threshold of the best mean per-image IoU on
the validation split (never on test), and print those figures beside the plain ones, with
their own difference from Otsu.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPECS = (
    "resunet",
    "resunet_bitemporal",
    "flora",
    "sarkd_teacher_agnostic",
    "sarkd_teacher",
    "sarkd_student",
)
# Published per-image flood IoU on the 70 test patches (paper Table VII) and the two
# baselines every OMBRIA user can recompute.
PUBLISHED = {
    "Otsu on S2 MNDWI": 0.333,
    "U-Net S1": 0.573,
    "U-Net S2": 0.542,
    "OmbriaNet S1 (bi-temporal)": 0.518,
    "SVM S1+S2": 0.625,
    "OmbriaNet S1+S2": 0.724,
}
TARGETS = {"resunet": 0.60, "resunet_bitemporal": 0.65, "flora": 0.65}


def _spec(name: str, full: bool, overrides: list[str]) -> Any:
    from floodlab.specs import load_spec

    path = ROOT / "experiments" / f"ombria_{name}{'_full' if full else ''}.yaml"
    return load_spec(path, overrides)


def _model_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The model's figures of one evaluation, and its paired difference from Otsu."""
    model = report["predictors"]["model"]
    vs = report["differences"]["model - otsu"]
    return {
        "mean_image_iou": round(model["mean_image_iou"], 4),
        "ci95": [round(v, 4) for v in model["ci95"]["mean_image_iou"]],
        "pooled_iou": round(model["iou"], 4),
        "f1": round(model["f1"], 4),
        "minus_otsu": {
            "value": round(vs["mean_image_iou"]["value"], 4),
            "ci95": [round(v, 4) for v in vs["mean_image_iou"]["ci95"]],
            "images_better": round(vs["images_better"], 3),
        },
    }


def _row(label: str, r: dict[str, Any], train_s: float | None, note: str) -> str:
    """One model's line of the table."""
    lo, hi = r["ci95"]
    d = r["minus_otsu"]
    train = f"{train_s / 60:>5.1f}min" if train_s is not None else " " * 8
    return (
        f"  {label:<34} {r['mean_image_iou']:>6.3f} [{lo:.3f}, {hi:.3f}]"
        f" {r['pooled_iou']:>7.3f} {train}"
        f"  {d['value']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
        f" {100 * d['images_better']:>5.0f}%{note}"
    )


def main() -> None:
    """Convert, train, evaluate and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="Folder holding OmbriaS1/.")
    parser.add_argument("--store", default="data/ombria.zarr")
    parser.add_argument("--runs", default="runs", help="Root of the run directories.")
    parser.add_argument("--specs", default=",".join(SPECS))
    parser.add_argument("--full", action="store_true", help="The GPU variants.")
    parser.add_argument("--epochs", type=int, default=None, help="Override every spec's epochs.")
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="Evaluate each spec's latest run under --runs instead of training it.",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="Override every spec, as `floodlab train --set` (repeatable).",
    )
    parser.add_argument(
        "--tta",
        choices=("none", "flips", "dihedral"),
        default="none",
        help="Also evaluate each model with this test-time augmentation.",
    )
    parser.add_argument(
        "--threshold",
        choices=("0.5", "val"),
        default="0.5",
        help="Also evaluate each model at the threshold chosen on the validation split.",
    )
    args = parser.parse_args()

    from floodlab.data.convert.pipeline import convert, is_complete
    from floodlab.predict.evaluate import evaluate_run
    from floodlab.tracking import RunDir
    from floodlab.train.driver import train

    store = Path(args.store)
    if not is_complete(store):
        started = time.perf_counter()
        convert("ombria", args.source, store, derived=("VV_DIFF", "MNDWI", "NDWI"))
        print(f"converted {args.source} -> {store} in {time.perf_counter() - started:.0f}s")
    names = [n.strip() for n in args.specs.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        parser.error(f"--specs: unknown {unknown}; choose from {list(SPECS)}")
    common = [f"data.store={store}", f"logging.root={args.runs}", *args.overrides]
    if args.epochs:
        common.append(f"trainer.epochs={args.epochs}")
    results: dict[str, dict[str, Any]] = {}
    baselines: dict[str, Any] = {}
    teacher_run: Path | None = None
    for name in names:
        extra = list(common)
        if name == "sarkd_student" and teacher_run is not None:
            extra.append(f"distill.teacher={{run: {teacher_run}}}")
        spec = _spec(name, args.full, extra)
        if args.evaluate_only:
            run = RunDir.open(f"{spec.name}/latest", root=args.runs)
            # Epoch seconds as recorded (start-up and evaluation not included).
            train_s = sum(float(r.get("time", 0.0)) for r in run.read_metrics())
        else:
            started = time.perf_counter()
            run = train(spec).run
            train_s = time.perf_counter() - started
        if name == "sarkd_teacher":
            teacher_run = run.path
        report = evaluate_run(run.path, split="test", overwrite=True)
        results[name] = {
            "spec": spec.name,
            **_model_figures(report),
            "epochs": len(run.read_metrics()),
            "train_s": round(train_s),
            "run": str(run.path),
        }
        if args.tta != "none" or args.threshold != "0.5":
            varied = evaluate_run(
                run.path,
                split="test",
                tta=args.tta,
                threshold=args.threshold,
                overwrite=True,
            )
            results[name]["varied"] = {
                "tta": args.tta,
                "threshold": varied["threshold"],
                "threshold_chosen_on": (varied.get("threshold_choice") or {}).get("split"),
                **_model_figures(varied),
            }
        p = report["predictors"]
        if "model_with_optical" in p:
            results[name]["with_optical_mean_image_iou"] = round(
                p["model_with_optical"]["mean_image_iou"], 4
            )
        for base in ("otsu", "all_water"):
            baselines[base] = {
                "mean_image_iou": round(p[base]["mean_image_iou"], 4),
                "ci95": [round(v, 4) for v in p[base]["ci95"]["mean_image_iou"]],
                "pooled_iou": round(p[base]["iou"], 4),
            }
        print(f"{name}: {results[name]}", flush=True)

    print()
    print("OMBRIA test (70 patches), mean per-image flood IoU [95% interval], SAR alone:")
    print(
        f"  {'model':<34} {'IoU':>6} {'95% interval':>15} {'pooled':>7} {'train':>8}"
        f"  {'minus Otsu [paired 95%]':>25} {'better':>6}"
    )
    for name, r in results.items():
        target = f"  (target {TARGETS[name]:.2f})" if name in TARGETS else ""
        print(_row(f"floodlab {name}", r, r["train_s"], target))
        if "varied" in r:
            v = r["varied"]
            how = [f"tta {v['tta']}"] if v["tta"] != "none" else []
            if v["threshold_chosen_on"]:
                how.append(f"thr {v['threshold']:g} ({v['threshold_chosen_on']})")
            print(_row(f"  + {', '.join(how)}", v, None, ""))
    for base, r in baselines.items():
        lo, hi = r["ci95"]
        print(
            f"  {base:<34} {r['mean_image_iou']:>6.3f} [{lo:.3f}, {hi:.3f}] {r['pooled_iou']:>7.3f}"
        )
    for what, value in PUBLISHED.items():
        print(f"  paper: {what:<27} {value:>6.3f}")
    print(
        json.dumps(
            {
                "benchmark": "real_ombria",
                "variant": "full" if args.full else "cpu",
                "overrides": args.overrides,
                "split": "test",
                "metric": "mean_image_iou",
                "models": results,
                "baselines": baselines,
                "published": PUBLISHED,
            }
        )
    )


if __name__ == "__main__":
    main()
