"""Multi-node Ray, tested on this machine: a sweep's trials and a run's ranks land on
different nodes, and a run that loses a node mid-run continues on the nodes left from its last checkpoint, no epoch lost or
repeated (tests/cluster/multinode_job.py, in its own process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

JOB = Path(__file__).with_name("multinode_job.py")

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_sweeps_and_runs_span_nodes_and_a_run_survives_losing_one(
    tiny_s1f11_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(JOB), str(tiny_s1f11_store), str(tmp_path / "runs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-4000:]
    report = json.loads(out.read_text())
    workers = set(report["nodes"].values())
    # convert --address: chips read on several worker nodes, the store as a local one.
    converted = report["convert"]
    assert converted["chips"] == 16 and converted["same"] is True
    assert len(set(converted["read_on"]) & workers) >= 2
    trial_nodes = set(report["trial_nodes"].values())
    assert report["trial_statuses"] == ["TERMINATED", "TERMINATED"]
    assert len(trial_nodes) == 2 and trial_nodes <= workers  # the trials spread over nodes

    assert report["status"] == "completed"
    assert report["epochs"] == [1, 2, 3]  # epoch 1 kept, none repeated, none lost

    rank0, rank1 = report["ranks"]
    # Before the loss: the two ranks (2 CPUs each) on two different 3-CPU worker nodes.
    first = {r["rank"]: (r["earlier"][0] if r["earlier"] else r) for r in (rank0, rank1)}
    assert first[0]["node_id"] != first[1]["node_id"]
    assert {first[0]["node_id"], first[1]["node_id"]} <= workers
    # Rank 1's node went down with it; the group restarted from epoch 1's checkpoint on
    # the nodes left, and the lost node is dead in the cluster's view.
    lost = first[1]["node_id"]
    assert report["alive"][lost] is False
    assert rank1["attempt"] == 2 and rank1["start_epoch"] == 2
    assert rank0["attempt"] == 2 and rank0["start_epoch"] == 2
    assert lost not in (rank0["node_id"], rank1["node_id"])
    assert rank0["node_id"] != rank1["node_id"]
    assert {rank0["node_id"], rank1["node_id"]} <= workers
