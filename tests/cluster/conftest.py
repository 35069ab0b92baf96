"""A real Ray head (dashboard + Jobs API on 127.0.0.1) started by `ray start` for job tests.

It is separate from the in-process `ray_session`: its own temp dir (so `ray.init()`
elsewhere never finds it through the "current cluster" file) and its own free ports
(so it never competes with another local Ray for a fixed default port). It is stopped by
terminating its `ray start --block` process, which shuts down exactly this cluster;
`ray stop` would stop every Ray instance on the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_DEADLINE_S = 240  # a loaded 2-core machine can take minutes to start GCS + dashboard


def _free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on loopback (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _jobs_api_ready(address: str) -> bool:
    """True once the Jobs API answers a listing (with Ray's auth headers, if enabled)."""
    from ray.job_submission import JobSubmissionClient

    try:
        JobSubmissionClient(address).list_jobs()
        return True
    except Exception:  # not up yet: connection refused, 5xx, agent not registered, ...
        return False


def _start_head(temp_dir: str) -> tuple[subprocess.Popen[bytes], str, str]:
    """Run `ray start --head --block` on free ports; return (process, address, failure)."""
    ray_bin = Path(sys.executable).with_name("ray")
    gcs, dash, agent_http, agent_grpc, env_agent, metrics, client, node_mgr, obj_mgr = _free_ports(
        9
    )
    worker_lo = 20000 + (os.getpid() * 97 + dash) % 30000  # a private range of worker ports
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # Jobs run `python -m floodlab.cli ...`: `python` must be this environment's.
    env["PATH"] = f"{ray_bin.parent}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    env["RAY_raylet_start_wait_time_s"] = "60"  # the dashboard agent starts slowly under load
    # A loopback-only test cluster: no token authentication, whatever ~/.ray holds. Ray
    # replaces `--node-ip-address 127.0.0.1` with the machine's address (and then listens on
    # every interface) unless it believes it cannot form a multi-node cluster.
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    cmd = [
        str(ray_bin), "start", "--head", "--block", "--disable-usage-stats",
        "--node-ip-address", "127.0.0.1", "--port", str(gcs),
        "--num-cpus", "4", "--num-gpus", "0",
        "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
        "--dashboard-port", str(dash),
        "--dashboard-agent-listen-port", str(agent_http),
        "--dashboard-agent-grpc-port", str(agent_grpc),
        "--runtime-env-agent-port", str(env_agent),
        "--metrics-export-port", str(metrics),
        "--ray-client-server-port", str(client),
        "--node-manager-port", str(node_mgr), "--object-manager-port", str(obj_mgr),
        "--min-worker-port", str(worker_lo), "--max-worker-port", str(worker_lo + 199),
        "--temp-dir", temp_dir,
    ]  # fmt: skip
    log_path = Path(temp_dir) / "ray-start.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    address = f"http://127.0.0.1:{dash}"
    deadline = time.monotonic() + START_DEADLINE_S
    while not _jobs_api_ready(address):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_head(proc)
            return proc, address, log_path.read_text(errors="replace")[-3000:]
        time.sleep(1)
    return proc, address, ""


def _stop_head(proc: subprocess.Popen[bytes]) -> None:
    """Stop exactly the cluster started by `proc` (its process group), never another."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` shuts its cluster down
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # leftovers of this cluster only
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """Start a 4-CPU Ray head; yield its Jobs API address (http://127.0.0.1:PORT)."""
    # Short path: Ray's unix sockets live under the temp dir and have a length limit.
    temp_dir = tempfile.mkdtemp(prefix="flray-", dir="/tmp")
    try:
        for _attempt in range(2):  # a start can time out on a busy machine: try once more
            proc, address, failure = _start_head(temp_dir)
            if not failure:
                break
        else:
            pytest.fail(f"the test Ray head did not start:\n{failure}")
        try:
            yield address
        finally:
            _stop_head(proc)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
