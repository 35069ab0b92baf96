"""Tasks: one per model family, owning model(s), loss composition, metrics and steps."""

from floodlab.tasks.base import Batch, StepContext, Task
from floodlab.tasks.cloud import CloudTask
from floodlab.tasks.cyclegan import CycleGANTask
from floodlab.tasks.flora import FloraTask
from floodlab.tasks.registry import (
    FAMILIES,
    Family,
    build_model,
    build_task,
    family,
    register_family,
)
from floodlab.tasks.resunet import ResUNetTask
from floodlab.tasks.sarkd import SarKDTask, load_teacher
from floodlab.tasks.segmentation import SegmentationTask

__all__ = [
    "FAMILIES",
    "Batch",
    "CloudTask",
    "CycleGANTask",
    "Family",
    "FloraTask",
    "ResUNetTask",
    "SarKDTask",
    "SegmentationTask",
    "StepContext",
    "Task",
    "build_model",
    "build_task",
    "family",
    "load_teacher",
    "register_family",
]
