"""Tasks: one per model family, owning model(s), loss composition, metrics and steps."""

from floodlab.tasks.base import Batch, StepContext, Task
from floodlab.tasks.cloud import CloudTask
from floodlab.tasks.cyclegan import CycleGANTask
from floodlab.tasks.flora import FloraTask
from floodlab.tasks.registry import TASKS, build_task
from floodlab.tasks.resunet import ResUNetTask
from floodlab.tasks.sarkd import SarKDTask, load_teacher
from floodlab.tasks.segmentation import SegmentationTask

__all__ = [
    "TASKS",
    "Batch",
    "CloudTask",
    "CycleGANTask",
    "FloraTask",
    "ResUNetTask",
    "SarKDTask",
    "SegmentationTask",
    "StepContext",
    "Task",
    "build_task",
    "load_teacher",
]
