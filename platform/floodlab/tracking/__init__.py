"""Run and sweep directories, checkpoints and TensorBoard events (a leaf package anyone may import)."""

from floodlab.tracking.rundir import RunDir, list_runs
from floodlab.tracking.sweepdir import SweepDir

__all__ = ["RunDir", "SweepDir", "list_runs"]
