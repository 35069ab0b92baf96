"""Ray Train's overhead over plain PyTorch, and 2 workers vs 1, on the quickstart data.

Runs the same loop (`floodlab.train.loop.fit`) on the same spec and data three ways in one
process: plain PyTorch, Ray Train with 1 worker, Ray Train with 2 DDP workers (each worker
pinned to `trainer.cpus_per_worker` threads; the plain loop gets the same thread count).
Checkpointing is equal: the plain loop writes the same checkpoint every epoch
(`floodlab.tracking.checkpoint.write_checkpoint`, the function rank 0 uses), so the ratio
is what Ray Train and the run's other files (metrics, summary, TensorBoard, curves) add.
An epoch's time is the wall-clock interval between successive epoch ends; the loop's own
training + validation seconds are reported beside it (``compute``). The first epoch is a
warm-up and is left out; the variants run interleaved `--repeats` times and the medians are
reported. Totals include starting Ray Train's worker group.

Scaling is compared per training sample: 2 workers each train a disjoint half of the
split, and with whole batches only (the worker's sampler and loader) an epoch of 1 and of
2 workers need not train the same number of samples; the ratio of wall seconds per trained
sample is 0.5 when 2 workers are twice as fast.

Prints one JSON line per comparison:

    {"benchmark": "train_overhead", ..., "ratio": ray_1w_epoch / plain_epoch}  target <= 1.15
    {"benchmark": "train_scaling", ..., "ratio": s_per_sample_2w / s_per_sample_1w}  ideal 0.5

Usage: .venv/bin/python benchmarks/train_overhead.py [--epochs 4] [--set PATH=VALUE ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

ROOT = Path(__file__).resolve().parents[1]


class _Records:
    """The plain loop's hooks: keep each epoch record and write its checkpoint as rank 0
    does (into `folder`)."""

    def __init__(self, folder: Path) -> None:
        self.records: list[dict[str, Any]] = []
        self.folder = folder

    def on_step(self, *args: Any) -> None:
        pass

    def on_epoch_end(
        self, state: Any, record: dict[str, Any], *, checkpoint: Any = None, **kwargs: Any
    ) -> None:
        from floodlab.tracking.checkpoint import write_checkpoint
        from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name

        if checkpoint is not None:
            meta = {"epoch": state.epoch, "global_step": state.global_step}
            write_checkpoint(self.folder / checkpoint_dir_name(state.epoch), checkpoint(), meta)
        self.records.append(record)


def train_samples(n: int, world: int, batch: int, limit: int | None) -> int:
    """Samples one epoch trains over `world` workers (the worker's sampler and loader:
    a disjoint shard each, whole batches when the shard holds one)."""
    shard = n // world if world > 1 else n
    per = (shard // batch) * batch if shard >= batch else shard
    if limit:
        per = min(per, limit * batch)
    return per * world


def epoch_times(records: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Per epoch after the first: wall-clock seconds between successive epoch ends (all
    overheads: reporting, checkpoints, TensorBoard) and the loop's own compute seconds."""
    wall = [b["timestamp"] - a["timestamp"] for a, b in itertools.pairwise(records)]
    return wall, [float(r["time"]) for r in records[1:]]


def plain(spec: Any, store: Path, folder: Path) -> tuple[list[dict[str, Any]], float]:
    """The loop in one plain PyTorch process, a checkpoint per epoch into `folder`: epoch
    records and total seconds."""
    from floodlab.data.load.dataset import FloodDataset
    from floodlab.tasks import build_task
    from floodlab.train.loop import fit

    torch.set_num_threads(max(1, int(spec.trainer.cpus_per_worker)))
    started = time.perf_counter()
    data = spec.data.model_copy(update={"store": str(store)})
    train_ds = FloodDataset(data, data.train_split, train=True, seed=spec.seed)
    val_ds = FloodDataset(data, data.val_split, train=False, seed=spec.seed)
    sampler: DistributedSampler[int] = DistributedSampler(
        train_ds, num_replicas=1, rank=0, shuffle=True, seed=spec.seed
    )
    bs = spec.trainer.batch_size
    train_loader = DataLoader(
        train_ds, batch_size=bs, sampler=sampler, drop_last=len(sampler) >= bs
    )
    torch.manual_seed(spec.seed)
    task = build_task(spec)
    hooks = _Records(folder)
    fit(
        task,
        spec,
        train_loader,
        DataLoader(val_ds, batch_size=bs),
        hooks=hooks,
        train_sampler=sampler,
    )
    return hooks.records, time.perf_counter() - started


def ray_train(spec: Any, workers: int) -> tuple[list[dict[str, Any]], float]:
    """The same spec through `floodlab.train.driver.train`: epoch records and total seconds."""
    from floodlab.train.driver import train

    started = time.perf_counter()
    result = train(spec, workers=workers)
    total = time.perf_counter() - started
    return result.run.read_metrics(), total


def main() -> None:
    """Run the three variants and print the JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--repeats", type=int, default=2, help="Interleaved repeats of each variant."
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    from floodlab.cluster.ray_env import ensure_ray
    from floodlab.data.convert.prepare import ensure_store
    from floodlab.specs import load_spec

    with tempfile.TemporaryDirectory(prefix="floodlab-bench-") as tmp:
        spec = load_spec(
            ROOT / "experiments" / "quickstart.yaml",
            [
                f"trainer.epochs={args.epochs}",
                "logging.image_every=0",
                f"logging.root={tmp}",
                "trainer.checkpoint_every=1",
                *args.overrides,
            ],
        )
        store = ensure_store(spec.data)
        ensure_ray()
        from floodlab.data.load.dataset import FloodDataset

        data = spec.data.model_copy(update={"store": str(store)})
        n_train = len(FloodDataset(data, data.train_split, train=True, seed=spec.seed))
        t = spec.trainer
        samples = {
            w: train_samples(n_train, w, t.batch_size, t.limit_train_batches) for w in (1, 2)
        }
        # Interleaved repeats, so a burst of load from elsewhere hits every variant alike.
        wall: dict[str, list[float]] = {"plain": [], "ray1": [], "ray2": []}
        compute: dict[str, list[float]] = {"plain": [], "ray1": [], "ray2": []}
        totals: dict[str, list[float]] = {"plain": [], "ray1": [], "ray2": []}
        for _ in range(args.repeats):
            for name, run in (
                ("plain", lambda: plain(spec, Path(store), Path(tempfile.mkdtemp(dir=tmp)))),
                ("ray1", lambda: ray_train(spec, 1)),
                ("ray2", lambda: ray_train(spec, 2)),
            ):
                records, total = run()
                w, c = epoch_times(records)
                wall[name] += w
                compute[name] += c
                totals[name].append(total)

    def med(d: dict[str, list[float]], k: str) -> float:
        return statistics.median(d[k])

    common = {
        "epochs": args.epochs,
        "repeats": args.repeats,
        "cpu_threads_per_worker": max(1, int(spec.trainer.cpus_per_worker)),
    }
    p, one, two = med(wall, "plain"), med(wall, "ray1"), med(wall, "ray2")
    overhead = {
        "benchmark": "train_overhead",
        "plain_epoch_s": round(p, 3),
        "ray_1w_epoch_s": round(one, 3),
        "ratio": round(one / p, 3),
        "target": 1.15,
        "checkpoint_every_epoch": "both",
        "plain_compute_s": round(med(compute, "plain"), 3),
        "ray_1w_compute_s": round(med(compute, "ray1"), 3),
        "compute_ratio": round(med(compute, "ray1") / med(compute, "plain"), 3),
        "plain_total_s": round(med(totals, "plain"), 2),
        "ray_1w_total_s": round(med(totals, "ray1"), 2),
        **common,
    }
    scaling = {
        "benchmark": "train_scaling",
        "ray_1w_epoch_s": round(one, 3),
        "ray_2w_epoch_s": round(two, 3),
        "train_samples_per_epoch_1w": samples[1],
        "train_samples_per_epoch_2w": samples[2],
        "ratio": round((two / samples[2]) / (one / samples[1]), 3),
        "ideal": 0.5,
        "ray_2w_total_s": round(med(totals, "ray2"), 2),
        **common,
    }
    print(json.dumps(overhead))
    print(json.dumps(scaling))


if __name__ == "__main__":
    main()
