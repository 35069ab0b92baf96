"""The task registry: model `kind` -> Task class, and `build_task(spec)`."""

from __future__ import annotations

import logging

from torch import nn

from floodlab.specs import ExperimentSpec
from floodlab.tasks.base import Task
from floodlab.tasks.cloud import CloudTask
from floodlab.tasks.cyclegan import CycleGANTask
from floodlab.tasks.flora import FloraTask
from floodlab.tasks.resunet import ResUNetTask
from floodlab.tasks.sarkd import SarKDTask

logger = logging.getLogger(__name__)

TASKS: dict[str, type[Task]] = {
    "flora": FloraTask,
    "resunet": ResUNetTask,
    "sarkd": SarKDTask,
    "cyclegan": CycleGANTask,
    "cloud_unet": CloudTask,
}


def build_task(spec: ExperimentSpec, *, teacher: nn.Module | None = None) -> Task:
    """Build the task of a spec's model family.

    Args:
        spec: a validated experiment spec.
        teacher: SAR-KD only: the frozen teacher of a distilling student. When None and
            the spec distils, it is loaded from `spec.distill.teacher`
            (`floodlab.tasks.sarkd.load_teacher`).

    Returns:
        The task, its networks on the CPU in training mode.

    Raises:
        KeyError: the model kind has no task.
        ValueError: a teacher is given to a family that does not distil logits.
    """
    kind = spec.model.kind
    if kind not in TASKS:
        raise KeyError(f"Unknown model '{kind}'; available: {sorted(TASKS)}")
    if kind == "sarkd":
        task: Task = SarKDTask(spec, teacher=teacher)
    elif teacher is not None:
        raise ValueError(
            f"a teacher applies to SAR-KD students (model.kind: sarkd), not model.kind={kind!r}"
        )
    else:
        task = TASKS[kind](spec)
    logger.debug("built %s: %d trainable parameters", type(task).__name__, task.num_parameters())
    return task
