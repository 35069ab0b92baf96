"""Sweep benchmark: trial-epochs TPE+ASHA needs to reach a val IoU vs. random search (FIFO).

Both sweeps run the same small FLoRA task on synthetic Sen1Floods11, with the same space,
trial count, epochs per trial, concurrency and seed. The target is the best val IoU both
strategies reach (the lower of their two bests); the budget of a strategy is the number of
trial-epochs it had spent, in the order they were reported, when its running best first
reached the target. Prints one JSON line:

    .venv/bin/python benchmarks/sweep.py [--trials 6] [--epochs 3] [--concurrent 2] [--seeds 0,1]

``budget_ratio`` = random budget / TPE+ASHA budget (> 1: TPE+ASHA gets there cheaper),
per seed and as the geometric mean over the seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from floodlab.cluster.ray_env import ensure_ray
from floodlab.data.convert.prepare import ensure_store
from floodlab.specs import ExperimentSpec, load_spec
from floodlab.tune import run_sweep
from floodlab.tune.tuner import TUNE_DIR

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _spec(
    root: Path, trials: int, epochs: int, concurrent: int, seed: int, strategy: str
) -> ExperimentSpec:
    """The benchmark sweep: learning rate and loss weights of a tiny FLoRA."""
    sampler, scheduler = ("tpe", "asha") if strategy == "tpe_asha" else ("random", "fifo")
    return load_spec(
        EXPERIMENTS / "sweep_flora.yaml",
        [
            f"logging.root={root / 'runs'}",
            f"data.store={root / 'store.zarr'}",
            "data.synthetic={chips: 24, size: 64, seed: 0}",
            "data.patch_size=32",
            "model.widths=[8, 16]",
            "model.fusion={window: 2, heads: 1, scales: 2}",
            f"trainer.epochs={epochs}",
            "trainer.batch_size=4",
            "trainer.limit_train_batches=6",
            "trainer.limit_val_batches=2",
            "trainer.keep_checkpoints=1",
            "logging.tensorboard=false",
            "tune.space={optim.lr: {type: float, low: 0.0001, high: 0.05, log: true}, "
            "loss.seg.dice: {type: float, low: 0.2, high: 2.0}, "
            "loss.seg.bce: {type: float, low: 0.0, high: 2.0}, "
            "loss.rec.ssim: {type: float, low: 0.0, high: 1.0}}",
            f"tune.sampler={sampler}",
            f"tune.scheduler={{kind: {scheduler}, grace_period: 1, reduction_factor: 2}}",
            f"tune.num_trials={trials}",
            f"tune.max_concurrent={concurrent}",
            f"tune.seed={seed}",
            "tune.evaluate_defaults=true",
        ],
    )


def _epoch_events(sweep_dir: Path) -> list[tuple[float, str, int, float]]:
    """(timestamp, trial, epoch, val/iou) of every reported epoch, in the order reported."""
    events = []
    for result in sorted((sweep_dir / TUNE_DIR).glob("*/result.json")):
        for line in result.read_text().splitlines():
            row: dict[str, Any] = json.loads(line)
            if row.get("val/iou") is not None and row.get("epoch") is not None:
                events.append(
                    (float(row["timestamp"]), result.parent.name, int(row["epoch"]), row["val/iou"])
                )
    # Timestamps are whole seconds; ties keep each trial's epochs in order.
    return sorted(events, key=lambda e: (e[0], e[1], e[2]))


def _budget_to_reach(events: list[tuple[float, str, int, float]], target: float) -> int | None:
    """Trial-epochs spent when the running best val IoU first reaches `target`."""
    for spent, (_, _, _, iou) in enumerate(events, start=1):
        if iou >= target - 1e-12:
            return spent
    return None


def _compare(root: Path, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Both strategies with one seed: their curves, bests and budgets to the common target."""
    out: dict[str, Any] = {"seed": seed}
    curves: dict[str, list[tuple[float, str, int, float]]] = {}
    for strategy in ("random_fifo", "tpe_asha"):
        spec = _spec(root, args.trials, args.epochs, args.concurrent, seed, strategy)
        t0 = time.perf_counter()
        result = run_sweep(spec)
        out[f"{strategy}_wall_s"] = round(time.perf_counter() - t0, 1)
        curves[strategy] = _epoch_events(result.sweep_dir)
        out[f"{strategy}_trial_epochs"] = len(curves[strategy])
        out[f"{strategy}_best_iou"] = max((e[3] for e in curves[strategy]), default=None)
        out[f"{strategy}_errored"] = result.counts.get("ERROR", 0)
    bests = [out["random_fifo_best_iou"], out["tpe_asha_best_iou"]]
    if None in bests:
        out["error"] = "a strategy reported no val/iou"
        return out
    target = min(bests)
    rnd = _budget_to_reach(curves["random_fifo"], target)
    tpe = _budget_to_reach(curves["tpe_asha"], target)
    out.update(
        target_iou=round(target, 4),
        random_fifo_trial_epochs_to_target=rnd,
        tpe_asha_trial_epochs_to_target=tpe,
        budget_ratio=round(rnd / tpe, 3) if rnd and tpe else None,
        wall_ratio=round(out["random_fifo_wall_s"] / out["tpe_asha_wall_s"], 3),
    )
    return out


def main() -> None:
    """Run both sweeps for every seed and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--seeds", default="0,1", help="Comma-separated sweep seeds.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ensure_ray()
    seeds = [int(s) for s in args.seeds.split(",")]
    out: dict[str, Any] = {"benchmark": "sweep", "task": "flora-synthetic-sen1floods11"}
    out.update(trials=args.trials, epochs_per_trial=args.epochs, concurrent=args.concurrent)
    with tempfile.TemporaryDirectory(prefix="floodlab-bench-sweep-") as tmp:
        # Synthesise and convert the store first, outside the timed sweeps.
        ensure_store(_spec(Path(tmp), args.trials, 1, 1, 0, "random_fifo").data)
        runs = [_compare(Path(tmp), args, seed) for seed in seeds]
    ratios = [r["budget_ratio"] for r in runs if r.get("budget_ratio")]
    walls = [r["wall_ratio"] for r in runs if r.get("wall_ratio")]
    # Geometric means: ratios multiply, so 2x better and 2x worse average to 1.
    out["budget_ratio"] = round(statistics.geometric_mean(ratios), 3) if ratios else None
    out["wall_ratio"] = round(statistics.geometric_mean(walls), 3) if walls else None
    out["per_seed"] = runs
    print(json.dumps(out))


if __name__ == "__main__":
    main()
