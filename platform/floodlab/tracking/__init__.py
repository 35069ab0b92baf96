"""Run directories, checkpoints and TensorBoard events (a leaf package anyone may import)."""

from floodlab.tracking.rundir import RunDir, list_runs

__all__ = ["RunDir", "list_runs"]
