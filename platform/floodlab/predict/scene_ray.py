"""Scene prediction spread over Ray actors: tiles read on the driver, predicted by workers."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Generator
from typing import Any

import numpy as np

from floodlab.errors import DataError
from floodlab.predict.blend import StripModel, TileResult
from floodlab.predict.scene_io import SceneInputs
from floodlab.predict.windows import StripPlan

log = logging.getLogger(__name__)


def n_workers(address: str | None, parallel: int) -> int:
    """Ray workers to use: `parallel` if given; with an address, the cluster's CPUs (max 8)."""
    if parallel < 0:
        raise DataError(f"--parallel: `parallel >= 0` must hold, but got {parallel}")
    if parallel or address is None:
        return parallel
    _connect(address)
    import ray

    return max(1, min(8, int(ray.cluster_resources().get("CPU", 1))))


def _connect(address: str | None) -> None:
    """Join (or start) Ray: the running session if there is one, else `ensure_ray`."""
    import ray

    if ray.is_initialized():
        return
    from floodlab.cluster.ray_env import ensure_ray

    ensure_ray(address)


class _StripWorker:
    """Ray actor that keeps one `StripModel` (and its network) loaded across tiles."""

    def __init__(self, model: StripModel):
        self.model = model

    def run(self, strip: int, block: int, raw: np.ndarray) -> TileResult:
        return self.model(strip, block, raw)


def tiles_on_ray(
    scene: SceneInputs,
    plan: StripPlan,
    model: StripModel,
    n_workers: int,
    address: str | None,
    use_gpu: bool,
) -> Generator[TileResult, None, None]:
    """Predict tiles on Ray actors; the driver reads inputs and yields results in order.

    At most two tiles per worker are in flight, so the driver's memory stays bounded
    however many tiles the scene has.
    """
    import ray

    _connect(address)
    actor_cls: Any = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0)(_StripWorker)
    model_ref = ray.put(model)
    actors = [actor_cls.remote(model_ref) for _ in range(n_workers)]
    log.info("predicting on %d Ray workers", n_workers)
    pending: deque[Any] = deque()
    try:
        for t, (k, j) in enumerate(plan.tiles()):
            raw = scene.read_tile(plan.strip_rows(k), plan.block_cols(j))
            pending.append(actors[t % n_workers].run.remote(k, j, raw))
            while len(pending) >= 2 * n_workers:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())
    finally:
        for actor in actors:
            ray.kill(actor)
