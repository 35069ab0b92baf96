"""Connect to a Ray cluster or start floodlab's own in-process local Ray (loopback only)."""

from __future__ import annotations

import logging
import os
from typing import Any

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


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None) -> dict[str, float]:
    """Make sure this process is connected to Ray; idempotent.

    Args:
        address: ``auto`` (a cluster started on this machine with ``ray start``),
            ``ray://host:10001`` (Ray Client) or ``host:port`` (the GCS). None: the
            ``RAY_ADDRESS`` environment variable if set (as inside a Ray Job), else an
            in-process local Ray with the dashboard off and every service bound to
            127.0.0.1.
        num_cpus: logical CPUs of a local Ray; default `local_num_cpus()`.

    Returns:
        The cluster's total resources (e.g. ``{"CPU": 8.0, "GPU": 0.0, ...}``).

    Raises:
        ClusterError: the cluster cannot be reached.
    """
    import ray

    if ray.is_initialized():  # e.g. a test session's Ray, or a second call
        return dict(ray.cluster_resources())
    address = address or os.environ.get("RAY_ADDRESS") or None
    env = {"RAY_TRAIN_V2_ENABLED": "1"}
    try:
        if address is None:
            cpus = num_cpus or local_num_cpus()
            log.info("starting a local Ray with %d logical CPUs (dashboard off)", cpus)
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                dashboard_host="127.0.0.1",
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": env},
            )
        else:
            log.info("connecting to the Ray cluster at %s", address)
            kwargs: dict[str, Any] = {"address": address, "log_to_driver": False}
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
