"""Start-up cost of a training run and of a sweep trial: Ray vs a plain PyTorch process.

Each variant runs in a fresh subprocess, as a command would, on the quickstart spec with
one epoch:

* ``plain``: imports, dataset, model and the loop (`floodlab.train.loop.fit`) in one
  process;
* ``ray``: imports, floodlab's local Ray (`ensure_ray`), then `--runs` runs one after
  the other through `floodlab.train.driver.train` (1 worker);
* ``trial_ray_train`` and ``trial_in_trial``: a sweep of `--runs` one-epoch trials, one at
  a time (FIFO), each a 1-worker run: driven through Ray Train (``tune.in_trial=false``),
  or trained in the Tune trial's own process (``tune.in_trial=true``, the default).

Phases (seconds): ``imports`` (process start to floodlab imported), ``ray_init``, and per
run ``to_first_step`` (the call to the first training step: for a run through Ray Train,
its controller, worker group, process-group set-up and the worker's data and model; for
plain, data and model; for a trial, from Tune starting the trial), ``epoch`` and
``after_last_epoch`` (final files and worker-group shutdown; for a trial, until the next
trial starts or the sweep ends). For Ray the first run and the median of the later ones are
given apart: the first pays for cold caches. Prints one JSON line per variant and ratio
lines (later runs' to-first-step over plain's; Ray Train trials' over in-trial ones'):

    .venv/bin/python benchmarks/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _spec(root: str) -> Any:
    from floodlab.specs import load_spec

    return load_spec(
        ROOT / "experiments" / "quickstart.yaml",
        ["trainer.epochs=1", "logging.image_every=0", f"logging.root={root}"],
    )


def _phases(call: float, records: list[dict[str, Any]], returned: float) -> dict[str, float]:
    """to_first_step / epoch / after_last_epoch of one run from its epoch records."""
    first = records[0]["timestamp"] - records[0]["time"]  # the epoch's (first step's) start
    return {
        "to_first_step": round(first - call, 2),
        "epoch": round(records[-1]["timestamp"] - first, 2),
        "after_last_epoch": round(returned - records[-1]["timestamp"], 2),
    }


def child(variant: str, started: float, root: str, runs: int) -> dict[str, Any]:
    """One variant in this (fresh) process; `started` is when the parent launched it."""
    import floodlab.train.driver  # noqa: F401  (what `floodlab train` imports)
    from floodlab.data.convert.prepare import ensure_store

    out: dict[str, Any] = {"variant": variant, "imports": round(time.time() - started, 2)}
    spec = _spec(root)
    store = ensure_store(spec.data)  # converted by the parent: only opened here
    if variant == "plain":
        import torch
        from torch.utils.data import DataLoader

        from floodlab.data.load.dataset import FloodDataset
        from floodlab.tasks import build_task
        from floodlab.train.loop import fit

        class Hooks:
            def __init__(self) -> None:
                self.records: list[dict[str, Any]] = []

            def on_step(self, *args: Any) -> None:
                pass

            def on_epoch_end(self, state: Any, record: dict[str, Any], **kw: Any) -> None:
                self.records.append(record)

        torch.set_num_threads(max(1, int(spec.trainer.cpus_per_worker)))
        call = time.time()
        data = spec.data.model_copy(update={"store": str(store)})
        train_ds = FloodDataset(data, data.train_split, train=True, seed=spec.seed)
        val_ds = FloodDataset(data, data.val_split, train=False, seed=spec.seed)
        bs = spec.trainer.batch_size
        hooks = Hooks()
        fit(
            build_task(spec),
            spec,
            DataLoader(train_ds, batch_size=bs, shuffle=True, drop_last=True),
            DataLoader(val_ds, batch_size=bs),
            hooks=hooks,
        )
        out["runs"] = [_phases(call, hooks.records, time.time())]
        return out
    from floodlab.cluster.ray_env import ensure_ray
    from floodlab.train.driver import train

    t0 = time.time()
    ensure_ray()
    out["ray_init"] = round(time.time() - t0, 2)
    out["runs"] = []
    if variant.startswith("trial_"):
        out["runs"] = _trials(spec, store, in_trial=variant == "trial_in_trial", runs=runs)
        return out
    for _ in range(runs):
        call = time.time()
        result = train(spec, workers=1)
        out["runs"].append(_phases(call, result.run.read_metrics(), time.time()))
    return out


def _trials(spec: Any, store: Any, *, in_trial: bool, runs: int) -> list[dict[str, float]]:
    """Phases of each trial of a FIFO sweep of `runs` one-epoch trials, one at a time."""
    from floodlab.specs import with_values
    from floodlab.tracking import RunDir
    from floodlab.tune.tuner import run_sweep

    tune = {
        "space": {"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
        "num_trials": runs,
        "max_concurrent": 1,
        "scheduler": {"kind": "fifo"},
        "evaluate_defaults": False,
        "in_trial": in_trial,
    }
    spec = with_values(spec, {"tune": tune}, "benchmark")
    started: dict[str, float] = {}

    def progress(p: Any) -> None:
        if p.event == "start":
            started.setdefault(p.trial_id, time.time())

    result = run_sweep(spec, progress=progress, store=store)
    ended = time.time()
    order = sorted(started, key=started.get)  # type: ignore[arg-type]
    phases = []
    for i, trial_id in enumerate(order):
        records = RunDir(result.sweep_dir / "trials" / trial_id).read_metrics()
        until = started[order[i + 1]] if i + 1 < len(order) else ended
        phases.append(_phases(started[trial_id], records, until))
    return phases


def _later(runs: list[dict[str, float]], key: str) -> float:
    """Median of `key` over the runs after the first (the first when there is one only)."""
    return round(statistics.median(r[key] for r in (runs[1:] or runs)), 2)


def main() -> None:
    """Run both variants in fresh processes and print the JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Ray runs in one process.")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "STARTED", "ROOT"))
    args = parser.parse_args()
    if args.child:
        variant, started, root = args.child
        print(json.dumps(child(variant, float(started), root, args.runs)))
        return
    from floodlab.data.convert.prepare import ensure_store

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="floodlab-bench-startup-") as tmp:
        ensure_store(_spec(tmp).data)  # convert once, outside the measurements
        for variant in ("plain", "ray", "trial_ray_train", "trial_in_trial"):
            cmd = [sys.executable, __file__, "--runs", str(args.runs)]
            cmd += ["--child", variant, repr(time.time()), tmp]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps({"benchmark": "startup", **results[variant]}))
    ray_runs = results["ray"]["runs"]
    ray_first = _later(ray_runs, "to_first_step")
    plain_first = results["plain"]["runs"][0]["to_first_step"]
    print(
        json.dumps(
            {
                "benchmark": "startup_ratio",
                "ray_to_first_step_s": ray_first,
                "ray_first_run_to_first_step_s": ray_runs[0]["to_first_step"],
                "ray_after_last_epoch_s": _later(ray_runs, "after_last_epoch"),
                "plain_to_first_step_s": plain_first,
                "ratio": round(ray_first / plain_first, 2) if plain_first > 0 else None,
            }
        )
    )
    train_runs = results["trial_ray_train"]["runs"]
    own_runs = results["trial_in_trial"]["runs"]
    through, own = _later(train_runs, "to_first_step"), _later(own_runs, "to_first_step")
    print(
        json.dumps(
            {
                "benchmark": "trial_startup_ratio",
                "ray_train_trial_to_first_step_s": through,
                "in_trial_to_first_step_s": own,
                "ray_train_trial_after_last_epoch_s": _later(train_runs, "after_last_epoch"),
                "in_trial_after_last_epoch_s": _later(own_runs, "after_last_epoch"),
                "in_trial_over_plain": round(own / plain_first, 2) if plain_first > 0 else None,
                "ratio": round(through / own, 2) if own > 0 else None,
            }
        )
    )


if __name__ == "__main__":
    main()
