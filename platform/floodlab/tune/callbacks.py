"""Ray Train callbacks of a sweep trial: metrics to Tune, and freeing a stopped trial's workers.

Why the second one: when Tune stops a trial early (ASHA) or a sweep is interrupted, the trial
actor is killed and the Train controller it owns dies with it, ungracefully. Ray Train's own
placement-group cleaner then has to ask Ray's State API (served by the dashboard) whether the
controller is gone; with the dashboard off, as in floodlab's local Ray, it never learns, and
the dead run's worker resources stay reserved until the sweep ends, so later trials wait
forever for CPUs. The ledger below records each run's controller and placement groups, and
the sweep's driver releases them once the controller is dead (`release_stopped_run`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.train.v2._internal.execution.callback import ControllerCallback, WorkerGroupCallback
from ray.tune.integration.ray_train import TuneReportCallback

from floodlab.io import atomic_write_text
from floodlab.tune.reporting import RequiredMetrics

if TYPE_CHECKING:
    from ray.train import Checkpoint
    from ray.train.v2._internal.execution.context import TrainRunContext
    from ray.train.v2._internal.execution.worker_group import WorkerGroup

logger = logging.getLogger(__name__)

LEDGER_FILE = ".ray_resources.json"


class SweepReportCallback(TuneReportCallback):
    """Rank 0's per-epoch metrics to Tune, always with the metrics the sweep needs
    (`floodlab.tune.reporting.RequiredMetrics`).

    Args:
        required: metrics every result must hold (objectives and the pruning metric).
    """

    def __init__(self, required: list[str]):
        super().__init__()
        self.metrics = RequiredMetrics(required)

    def after_report(
        self,
        run_context: TrainRunContext,
        metrics: list[dict[str, Any]],
        checkpoint: Checkpoint | None,
    ) -> None:
        """Fill in required metrics, then hand the result to Tune."""
        first = self.metrics.fill(metrics[0])
        super().after_report(run_context, [first, *metrics[1:]], checkpoint)


class PlacementGroupLedger(ControllerCallback, WorkerGroupCallback):
    """Records the Train controller and every placement group of a run in its run directory.

    Args:
        run_dir: the trial's run directory.
    """

    def __init__(self, run_dir: str):
        self.path = Path(run_dir) / LEDGER_FILE
        self.controller: str | None = None
        self.groups: list[str] = []

    def _write(self) -> None:
        data = {"controller": self.controller, "placement_groups": self.groups}
        atomic_write_text(self.path, json.dumps(data) + "\n")

    def after_controller_start(self, train_run_context: TrainRunContext) -> None:
        """Remember the controller actor (this callback runs inside it)."""
        import ray

        self.controller = ray.get_runtime_context().get_actor_id()
        self._write()

    def after_worker_group_start(self, worker_group: WorkerGroup) -> None:
        """Remember the placement group of each worker group the controller starts."""
        state = worker_group.get_worker_group_state()
        self.groups.append(state.placement_group_handle.placement_group.id.hex())
        self._write()


def release_stopped_run(run_dir: Path) -> bool:
    """Free the placement groups of a run whose Train controller is dead.

    Returns:
        True when nothing is (or remains) to release; False while the controller still
        lives (the trial is still shutting down): call again later.
    """
    import ray
    from ray._private.state import actors
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    path = run_dir / LEDGER_FILE
    if not path.is_file():
        return True
    data = json.loads(path.read_text())
    controller = data.get("controller")
    if controller and actors(actor_id=controller).get("State") not in (None, "DEAD"):
        return False
    for hex_id in data.get("placement_groups", []):
        group = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(hex_id)))
        state = ray.util.placement_group_table(group).get("state")
        if state not in (None, "REMOVED"):
            logger.info("releasing the workers' resources of a stopped trial (%s)", run_dir.name)
            remove_placement_group(group)
    path.unlink(missing_ok=True)
    return True
