"""A conversion, a 2-trial sweep and a 2-worker training run on a Ray cluster of four nodes
on this machine, one of which the run loses mid-run; run in its own process by
tests/cluster/test_multinode.py (the test session's own Ray cannot share a process with
another cluster).

The conversion (`floodlab convert --address`) reads its chips through a reader that notes
the Ray node of each read, and is compared chip for chip with a local conversion.

The cluster (`ray.cluster_utils.Cluster`): a head with 1 CPU and three worker nodes with 3
CPUs and a resource of their own (``node_a``, ``node_b``, ``node_c``), every raylet on
127.0.0.1. Each rank asks for 2 CPUs, so two ranks (or the workers of two trials running
at once) must run on two different worker nodes, while a trial's own CPU can sit beside
a rank. Rank 1 takes its whole node down after epoch 1 (``FLOODLAB_FAULT_KILL=1:1:node``
SIGKILLs the node's raylet); Ray Train restarts the worker group on the two nodes left,
from the epoch-1 checkpoint.

Usage: python multinode_job.py STORE RUNS_ROOT OUT_JSON
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODES = ("node_a", "node_b", "node_c")


def convert_on(address: str, work: Path) -> dict[str, object]:
    """Convert synthetic Sen1Floods11 chips on the cluster and locally; where chips were read."""
    import numpy as np

    from floodlab.data.convert.pipeline import convert
    from floodlab.data.load.store import open_store
    from floodlab.data.sources import get_reader
    from floodlab.data.synth import write_synthetic

    raw = write_synthetic("sen1floods11", work / "raw", 16, 32, seed=5)
    notes = work / "nodes"
    notes.mkdir()
    reader = get_reader("sen1floods11", raw)
    base = type(reader)

    class NodeNotingReader(base):  # type: ignore[misc, valid-type]
        def read(self, ref):  # type: ignore[no-untyped-def]
            import ray

            node = ray.get_runtime_context().get_node_id()
            (notes / f"{ref.id}.{node}").touch()
            return super().read(ref)

    reader.__class__ = NodeNotingReader
    cluster = open_store(
        convert("sen1floods11", raw, work / "c.zarr", reader=reader, address=address)
    )
    local = open_store(convert("sen1floods11", raw, work / "l.zarr"))
    same = list(cluster.ids) == list(local.ids) and all(
        np.array_equal(
            cluster.read_bands(i, ["VV", "VH"]), local.read_bands(i, ["VV", "VH"]), equal_nan=True
        )
        for i in range(len(local.ids))
    )
    return {
        "chips": len(local.ids),
        "same": same,
        "read_on": sorted({p.suffix.lstrip(".") for p in notes.iterdir()}),
    }


def main(store: str, runs: str, out: str) -> None:
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    from floodlab.specs import load_spec
    from floodlab.tracking.sweepdir import SweepDir
    from floodlab.train.driver import train
    from floodlab.tune.tuner import run_sweep

    # Every raylet keeps 127.0.0.1 (see floodlab.cluster.ray_env._keep_loopback_node_address).
    ray_constants.ENABLE_RAY_CLUSTER = False
    loopback = {"node_ip_address": "127.0.0.1"}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            **loopback,
            "num_cpus": 1,
            "include_dashboard": False,
            "resources": {"head": 1},
            # A lost node is noticed within seconds, not the default tens of seconds.
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3},
        },
    )
    nodes = {name: cluster.add_node(**loopback, num_cpus=3, resources={name: 1}) for name in NODES}
    tiny = [
        f"data.store={store}",
        f"logging.root={runs}",
        "data.patch_size=32",
        "model.widths=[8,16,32]",
        "model.fusion.window=2",
        "trainer.batch_size=4",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "trainer.cpus_per_worker=2",
        "logging.image_every=0",
    ]
    try:
        # A 2-trial sweep, each trial one 2-CPU worker: both trials run at once (1 + 2 CPUs
        # each of the 10), so their workers take two different worker nodes.
        sweep_spec = load_spec(
            ROOT / "experiments" / "sweep_flora.yaml",
            [*tiny, "trainer.epochs=2", "trainer.num_workers=1", "tune.num_trials=2",
             "tune.scheduler={kind: fifo}", "tune.max_concurrent=2"],
        )  # fmt: skip
        sweep = run_sweep(sweep_spec, address=cluster.address)
        trials = {}
        for r in sweep.records:
            trial_run = SweepDir(sweep.sweep_dir).trial(r.trial_id)
            worker = json.loads((trial_run.workers_dir / "rank0.json").read_text())
            trials[r.trial_id] = worker["node_id"]
        statuses = [r.status for r in sweep.records]

        os.environ["FLOODLAB_FAULT_KILL"] = "1:1:node"
        spec = load_spec(
            ROOT / "experiments" / "quickstart.yaml",
            [*tiny, "trainer.epochs=3", "trainer.num_workers=2", "trainer.max_failures=1"],
        )
        result = train(spec, address=cluster.address)
        run = result.run
        alive = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
        # Last: on the nodes left. (Run first, in this same driver, the sweep's trial actors
        # were cancelled before they started; `floodlab convert` is a command of its own.)
        converted = convert_on(cluster.address, Path(out).parent / "convert")
        report = {
            "run": str(run.path),
            "epochs": [r["epoch"] for r in run.read_metrics()],
            "status": run.read_summary()["status"],
            "ranks": [json.loads((run.workers_dir / f"rank{r}.json").read_text()) for r in (0, 1)],
            "nodes": {name: node.node_id for name, node in nodes.items()},
            "head": cluster.head_node.node_id,
            "alive": alive,
            "trial_nodes": trials,
            "trial_statuses": statuses,
            "convert": converted,
        }
        Path(out).write_text(json.dumps(report))
    finally:
        ray.shutdown()
        for node in list(cluster.worker_nodes):
            with contextlib.suppress(Exception):  # the lost node's processes are gone already
                cluster.remove_node(node, allow_graceful=False)
        cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
