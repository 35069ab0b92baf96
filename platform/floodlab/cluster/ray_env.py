"""Connect to a Ray cluster or start floodlab's own in-process local Ray (loopback only)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from collections.abc import Iterator
from typing import Any

from floodlab.cluster.ray_output import log_to_driver, ray_imported, startup_concurrency
from floodlab.errors import ClusterError

log = logging.getLogger(__name__)

# Ray Train V2 (the controller/worker-group API that Tune trials drive) must be chosen before
# `ray.train` is first imported anywhere in the process.
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")


def local_num_cpus() -> int:
    """Logical CPUs of the local Ray: ``max(8, 2 * physical cores)``.

    Ray schedules by *logical* CPUs. A Tune trial that drives a Ray Train run holds one CPU
    for the trial actor while its training workers hold `trainer.cpus_per_worker` each, so
    with logical == physical cores a two-trial sweep on a 2-core laptop would wait forever
    for CPUs. Oversubscribing is safe because each training worker pins torch to
    `cpus_per_worker` threads; the floor of 8 admits two concurrent trials of two
    workers each (2 x (1 + 2) = 6 CPUs) with room for Ray Data/Tune bookkeeping.
    """
    return max(8, 2 * (os.cpu_count() or 1))


LOOPBACK = "127.0.0.1"
# Set once this process started its own local Ray (`own_local_ray`).
_started_local = False


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (``127.0.0.0/8``, ``::1``, ``::ffff:127.x.y.z``)."""
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host == "localhost"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@contextlib.contextmanager
def _keep_loopback_node_address() -> Iterator[None]:
    """Let ``ray.init(_node_ip_address="127.0.0.1")`` keep the loopback address.

    On Linux, `ray.init` replaces a loopback node address with the machine's own address
    (so that other machines could join), and every Ray listener then binds to all
    interfaces: the GCS, raylet and worker gRPC servers on ``*``, the agents on
    ``0.0.0.0`` and the external address. Only a node whose address is 127.0.0.1 binds
    them to loopback. Ray keeps the address as given on platforms where it cannot form
    multi-node clusters, a choice read from ``ray_constants.ENABLE_RAY_CLUSTER`` (set from
    $RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when Ray is imported, too late to change through the
    environment); it is switched off for the duration of the start only.
    """
    from ray._private import ray_constants

    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):  # a Ray that decides elsewhere
        yield
        return
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _loopback_interface() -> str | None:
    """The name of the network interface that holds 127.0.0.1 (``lo``, ``lo0``), if any."""
    import socket

    try:
        import psutil  # shipped with Ray (importable once `ray` is)
    except ImportError:
        return None
    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == LOOPBACK for a in addrs):
            return name
    return None


def start_local_ray(*, num_cpus: int | None = None, env_vars: dict[str, str] | None = None) -> None:
    """Start floodlab's in-process local Ray in this process: dashboard off, loopback only.

    Every listener of this Ray (GCS, raylet, workers, dashboard and runtime-env agents,
    metrics endpoints) binds to 127.0.0.1, so nothing else on the network can reach it;
    so do the gloo connections of multi-worker training (``GLOO_SOCKET_IFNAME`` is the
    loopback interface unless already set). One listener cannot be bound: rank 0 of every
    Ray Train run hosts torch.distributed's rendezvous store on all interfaces (README,
    "Security"). Ray's own token authentication stays as Ray sets it
    (on for a new local Ray unless $RAY_AUTH_MODE says otherwise). Workers' output reaches
    this process only when verbose (`floodlab.cluster.ray_output`). The test suite's
    session Ray is started here too.

    Args:
        num_cpus: logical CPUs; default `local_num_cpus()`.
        env_vars: extra environment variables for Ray's workers (Ray Train V2 is always on).

    Raises:
        RuntimeError, ValueError, ConnectionError, TimeoutError: Ray failed to start.
    """
    import ray

    ray_imported()  # its import made its loggers talkative again

    cpus = num_cpus or local_num_cpus()
    worker_env = {**(env_vars or {}), "RAY_TRAIN_V2_ENABLED": "1"}
    lo = _loopback_interface()
    if lo and "GLOO_SOCKET_IFNAME" not in os.environ:  # one machine: ranks meet on loopback
        worker_env.setdefault("GLOO_SOCKET_IFNAME", lo)
    log.info("starting a local Ray with %d logical CPUs (dashboard off, loopback only)", cpus)
    with _keep_loopback_node_address():
        ray.init(
            address="local",  # always a new Ray, even if $RAY_ADDRESS names another
            num_cpus=cpus,
            include_dashboard=False,
            dashboard_host=LOOPBACK,
            _node_ip_address=LOOPBACK,
            log_to_driver=log_to_driver(),  # workers' output only with `floodlab -v`
            configure_logging=False,
            runtime_env={"env_vars": worker_env},
            # Oversubscribed logical CPUs are deliberate here; see `ray_output`.
            _system_config={"worker_maximum_startup_concurrency": startup_concurrency(cpus)},
        )
    global _started_local
    _started_local = True
    node_ip = ray.util.get_node_ip_address()
    if not is_loopback(node_ip):
        log.warning("the local Ray listens on %s, not only on loopback", node_ip)


def own_local_ray() -> bool:
    """Whether this process is connected to a local Ray it started (`start_local_ray`):
    one machine, no node to lose."""
    import ray

    return _started_local and ray.is_initialized()


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None) -> dict[str, float]:
    """Make sure this process is connected to Ray; idempotent.

    Args:
        address: ``auto`` (a cluster started on this machine with ``ray start``),
            ``ray://host:10001`` (Ray Client) or ``host:port`` (the GCS). None: the
            ``RAY_ADDRESS`` environment variable if set (as inside a Ray Job), else an
            in-process local Ray with the dashboard off and every listener bound to
            127.0.0.1 (`start_local_ray`).
        num_cpus: logical CPUs of a local Ray; default `local_num_cpus()`.

    Returns:
        The cluster's total resources (e.g. ``{"CPU": 8.0, "GPU": 0.0, ...}``).

    Raises:
        ClusterError: the cluster cannot be reached.
    """
    import ray

    ray_imported()  # its import made its loggers talkative again

    if ray.is_initialized():  # e.g. a test session's Ray, or a second call
        return dict(ray.cluster_resources())
    address = address or os.environ.get("RAY_ADDRESS") or None
    env = {"RAY_TRAIN_V2_ENABLED": "1"}
    try:
        if address is None:
            start_local_ray(num_cpus=num_cpus)
        else:
            log.info("connecting to the Ray cluster at %s", address)
            kwargs: dict[str, Any] = {"address": address, "log_to_driver": log_to_driver()}
            if not address.startswith("ray://"):
                kwargs["configure_logging"] = False
            ray.init(runtime_env={"env_vars": env}, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as e:
        where = address or "a local Ray"
        raise ClusterError(
            f"cannot connect to {where} ({type(e).__name__}: {e}). Start the cluster first "
            "(`ray up ray_cluster.yaml`, or `ray start --head` on this machine), check "
            "--address (auto, ray://host:10001 or host:6379), or omit --address to run on "
            "an embedded local Ray."
        ) from None
    return dict(ray.cluster_resources())
