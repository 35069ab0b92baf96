"""The local Ray (floodlab's, and the test session's started the same way) listens on loopback.

Every listening socket of every process of the Ray session is listed (the driver, the
processes it started for the session and all their descendants: GCS, raylet, dashboard
and runtime-env agents, monitor, workers) and must be on 127.0.0.1, with one documented
exception (README, "Security"): torch.distributed's rendezvous store, which rank 0 of a
Ray Train run hosts on MASTER_PORT on every interface.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from floodlab.cluster.ray_env import is_loopback

pytestmark = pytest.mark.ray


@dataclass(frozen=True)
class Listener:
    """One listening socket: which process, where."""

    process: str
    pid: int
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.process} (pid {self.pid}) on {self.ip}:{self.port}"


def _label(proc: Any) -> str:
    """``gcs_server``, ``raylet``, ``ray::DashboardAgent``, ``ray::IDLE``, ``monitor.py``..."""
    if proc.pid == os.getpid():
        return "driver"
    name = proc.name()
    if name.startswith("python"):
        scripts = [Path(a).name for a in proc.cmdline()[1:] if a.endswith(".py")]
        return scripts[0] if scripts else name
    return name


def session_listeners(ray: Any) -> list[Listener]:
    """The listening TCP (and bound UDP) sockets of every process of this Ray session."""
    import psutil  # shipped with Ray, importable once `ray` is

    session_dir = ray._private.worker.global_worker.node.get_session_dir_path()
    driver = psutil.Process()
    procs = {driver.pid: driver}
    for child in driver.children(recursive=True):
        try:  # the session's own processes name its folder; their children belong to it
            if session_dir in " ".join(child.cmdline()):
                procs[child.pid] = child
                procs.update({p.pid: p for p in child.children(recursive=True)})
        except psutil.NoSuchProcess:
            continue
    listeners = []
    for proc in procs.values():
        try:
            label = _label(proc)
            conns = proc.net_connections(kind="inet")
        except psutil.NoSuchProcess:  # e.g. an idle worker that just exited
            continue
        for c in conns:
            udp = c.type == socket.SOCK_DGRAM and not c.raddr
            if c.status == psutil.CONN_LISTEN or udp:
                listeners.append(Listener(label, proc.pid, c.laddr.ip, c.laddr.port))
    return listeners


def test_the_local_ray_listens_on_loopback_only(ray_session) -> None:
    ray = ray_session

    @ray.remote(num_cpus=0)
    class Probe:
        def pid(self) -> int:
            return os.getpid()

    @ray.remote(num_cpus=0)
    def task_pid() -> int:
        return os.getpid()

    probe = Probe.remote()  # an actor and a task: workers with their own gRPC servers
    try:
        pids = {ray.get(probe.pid.remote()), ray.get(task_pid.remote())}
        listeners = session_listeners(ray)
    finally:
        ray.kill(probe)

    found = {x.process for x in listeners}
    for service in ("driver", "gcs_server", "raylet", "ray::DashboardAgent",
                    "ray::RuntimeEnvAgent"):  # fmt: skip
        assert service in found, f"no listener of {service} found among {sorted(found)}"
    assert pids & {x.pid for x in listeners}, "the workers' listeners were not found"
    exposed = [str(x) for x in listeners if not is_loopback(x.ip)]
    assert not exposed, "the local Ray listens beyond loopback:\n" + "\n".join(exposed)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_distributed_training_listens_on_loopback_except_torchs_rendezvous_store(
    ray_session, tmp_path: Path
) -> None:
    ray = ray_session
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

    @ray.remote(num_cpus=0)
    class Gate:
        """Holds both training workers, process group up, while the driver looks around."""

        def __init__(self) -> None:
            import asyncio

            self.arrived: dict[int, tuple[int, int]] = {}
            self.all_arrived = asyncio.Event()
            self.released = asyncio.Event()

        async def arrive(self, rank: int, pid: int, master_port: int) -> None:
            self.arrived[rank] = (pid, master_port)
            if len(self.arrived) == 2:
                self.all_arrived.set()
            await self.released.wait()

        async def wait_all(self) -> dict[int, tuple[int, int]]:
            await self.all_arrived.wait()
            return self.arrived

        def release(self) -> None:
            self.released.set()

    def train_fn_per_worker(config: dict[str, Any]) -> None:
        import torch
        import torch.distributed as dist

        t = torch.ones(1)
        dist.all_reduce(t)  # gloo connected between the ranks
        port = int(os.environ["MASTER_PORT"])
        ray.get(config["gate"].arrive.remote(dist.get_rank(), os.getpid(), port))

    @ray.remote(num_cpus=0)
    def fit(gate: Any, storage: str) -> None:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        TorchTrainer(
            train_fn_per_worker,
            train_loop_config={"gate": gate},
            scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
            run_config=RunConfig(name="listeners", storage_path=storage),
        ).fit()

    gate = Gate.remote()
    run = fit.remote(gate, str(tmp_path))
    arrived = gate.wait_all.remote()
    done, _ = ray.wait([run, arrived], num_returns=1)
    if run in done:
        ray.get(run)  # training failed before both workers arrived: show why
    workers = ray.get(arrived)
    try:
        listeners = session_listeners(ray)
    finally:
        ray.get(gate.release.remote())
        ray.get(run)

    rank0_pid, master_port = workers[0]
    store = [x for x in listeners if x.pid == rank0_pid and x.port == master_port]
    assert store, f"rank 0 (pid {rank0_pid}) does not listen on MASTER_PORT {master_port}"
    for pid, _ in workers.values():  # the training workers are among what was checked
        assert any(x.pid == pid and is_loopback(x.ip) for x in listeners), pid
    # The documented exception: torch binds its rendezvous store to every interface.
    exposed = [str(x) for x in listeners if not is_loopback(x.ip) and x not in store]
    assert not exposed, "training listens beyond loopback:\n" + "\n".join(exposed)
    ray.kill(gate)
