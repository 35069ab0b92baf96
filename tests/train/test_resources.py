"""What fits on the cluster: one CPU rule for a training run and for a sweep trial."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from floodlab.errors import ClusterError
from floodlab.specs import load_spec
from floodlab.tasks.base import unwrap
from floodlab.train.driver import cpu_fit

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml"


def test_cpu_fit_counts_runs_and_names_the_fields_when_none_fits():
    spec = load_spec(QUICKSTART, ["trainer.num_workers=2", "trainer.cpus_per_worker=1.5"])
    assert cpu_fit(spec, {"CPU": 7.0}) == 2  # 3 CPUs a run
    assert cpu_fit(spec, {"CPU": 8.0}, driver_cpus=1.0) == 2  # 4 CPUs a trial
    with pytest.raises(ClusterError, match=r"2 x 1.5 = 3 logical CPUs.*has 2.*--workers 1"):
        cpu_fit(spec, {"CPU": 2.0})
    with pytest.raises(ClusterError, match=r"1 \(the sweep trial\) \+ 2 x 1.5 = 4"):
        cpu_fit(spec, {"CPU": 3.0}, driver_cpus=1.0)


def test_unwrap_reaches_the_module_inside_ddp(tmp_path):
    import torch.distributed as dist

    net = nn.Linear(2, 1)
    assert unwrap(net) is net
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        wrapped = nn.parallel.DistributedDataParallel(net)
        assert unwrap(wrapped) is net
        assert torch.equal(unwrap(wrapped).weight, net.weight)
    finally:
        dist.destroy_process_group()
