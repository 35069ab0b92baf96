"""Flood IoU of trained models against the Otsu-threshold baseline on synthetic Sen1Floods11.

Trains, in one run, the quickstart FLoRA (experiments/quickstart.yaml as shipped) and a
small dual-attention ResUNet (experiments/resunet_sen1floods11.yaml shrunk to the
quickstart data: 64 px patches, widths 16-128, hand labels) through `floodlab train`'s
driver, then evaluates both on the test split with `floodlab evaluate`'s
`evaluate_run`, which scores Otsu's threshold on the raw VV dB of the same images and
the same validity mask. Prints one JSON line per model; ``ratio`` = model IoU / Otsu IoU.

Usage: .venv/bin/python benchmarks/flood_vs_otsu.py [--epochs N] [--split test]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART_DATA = [
    "data.store=data/quickstart/sen1floods11.zarr",
    "data.synthetic={chips: 40, size: 128, seed: 0}",
    "data.source=null",
    "data.patch_size=64",
    "data.label_sources=[hand]",
    "data.loader_workers=0",
]


def main() -> None:
    """Train both models, evaluate them beside Otsu, print the JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="Default: each spec's own.")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    from floodlab.data.convert.prepare import ensure_store
    from floodlab.predict.evaluate import evaluate_run
    from floodlab.specs import load_spec
    from floodlab.train.driver import train

    with tempfile.TemporaryDirectory(prefix="floodlab-bench-") as runs:
        common = [f"logging.root={runs}", "logging.image_every=0"]
        if args.epochs:
            common.append(f"trainer.epochs={args.epochs}")
        specs = {
            "flora_quickstart": load_spec(ROOT / "experiments" / "quickstart.yaml", common),
            "resunet_small": load_spec(
                ROOT / "experiments" / "resunet_sen1floods11.yaml",
                [
                    *QUICKSTART_DATA,
                    "model.widths=[16,32,64,128]",
                    "model.se_reduction=4",
                    "optim.lr=0.001",
                    "trainer.epochs=8",
                    "trainer.num_workers=1",
                    "trainer.batch_size=8",
                    "trainer.early_stopping=null",
                    "schedule.t0=4",
                    *common,
                ],
            ),
        }
        for name, spec in specs.items():
            ensure_store(spec.data)
            started = time.perf_counter()
            result = train(spec)
            train_s = time.perf_counter() - started
            report = evaluate_run(result.run.path, split=args.split)
            p = report["predictors"]
            line = {
                "benchmark": "flood_vs_otsu",
                "model": name,
                "split": args.split,
                "images": report["images"],
                "epochs": len(result.run.read_metrics()),
                "iou": round(p["model"]["iou"], 4),
                "otsu_iou": round(p["otsu"]["iou"], 4),
                "ratio": round(p["model"]["iou"] / p["otsu"]["iou"], 3),
                "train_s": round(train_s, 1),
            }
            if "model_with_optical" in p:
                line["iou_with_optical"] = round(p["model_with_optical"]["iou"], 4)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
