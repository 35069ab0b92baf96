"""The family registry: model `kind` -> spec class, model builder and task class.

Each family's Task class registers itself with one decorator naming its spec class and
model builder::

    @register_family(FloraSpec, model=build_flora)
    class FloraTask(Task): ...

`build_model(spec.model)` and `build_task(spec)` look the family up in `FAMILIES`. The spec
class carries the rest of the family's declaration: its loss terms and their defaults
(`losses`) and its own checks (`check`), see `floodlab.specs.model`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from floodlab.models import load_weights
from floodlab.models.blocks import num_parameters
from floodlab.specs import MODEL_KINDS, ExperimentSpec
from floodlab.specs.model import FamilySpec
from floodlab.tasks.base import Task

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=FamilySpec)
T = TypeVar("T", bound=type[Task])


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        spec: its `model` spec class (fields, loss terms with defaults, checks).
        model: builder of its network(s) from a `spec` instance (no data, no downloads;
            the spec's ``weights`` file is loaded by `build_model`, not by the builder).
        task: its Task class, built from an `ExperimentSpec`.
    """

    spec: type[FamilySpec]
    model: Callable[[Any], nn.Module]
    task: type[Task]

    @property
    def kind(self) -> str:
        """The `model.kind` of the family."""
        return str(self.spec.model_fields["kind"].default)


# kind -> Family; filled by @register_family on each family's Task class.
FAMILIES: dict[str, Family] = {}


def register_family(spec: type[S], *, model: Callable[[S], nn.Module]) -> Callable[[T], T]:
    """Register a Task class as the task of the family whose spec class is `spec`.

    Args:
        spec: the family's spec class, a member of `floodlab.specs.model.ModelSpec`.
        model: builds the family's network(s) from an instance of `spec`.

    Returns:
        A decorator that stores the family in `FAMILIES` and returns the class unchanged.

    Raises:
        ValueError: the kind is already registered, or `spec` is not in the model union.
    """
    kind = str(spec.model_fields["kind"].default)

    def decorator(task: T) -> T:
        if kind in FAMILIES:
            raise ValueError(
                f"model kind '{kind}' is already registered by {FAMILIES[kind].task.__name__}"
            )
        if kind not in MODEL_KINDS:
            raise ValueError(
                f"{spec.__name__}: kind '{kind}' is not in floodlab.specs.model.ModelSpec; "
                f"add {spec.__name__} to the union so specs can name it"
            )
        FAMILIES[kind] = Family(spec=spec, model=model, task=task)
        return task

    return decorator


def family(kind: str) -> Family:
    """The registered family of a `model.kind`.

    Raises:
        KeyError: ``Unknown model 'x'; available: [...]``.
    """
    if kind not in FAMILIES:
        raise KeyError(f"Unknown model '{kind}'; available: {sorted(FAMILIES)}")
    return FAMILIES[kind]


def build_model(spec_model: Any) -> nn.Module:
    """Build the network described by a model spec (``spec.model``).

    Builders read the spec only (no data, no downloads). When the spec names a local
    ``weights`` file it is loaded strictly after construction (`load_weights`).

    Args:
        spec_model: one of the model spec classes of `floodlab.specs.model`.

    Returns:
        The model, in training mode.

    Raises:
        KeyError: ``spec_model.kind`` is not registered.
        floodlab.errors.DataError: the weights file is missing or does not fit.
    """
    kind = getattr(spec_model, "kind", None)
    model = family(str(kind)).model(spec_model)
    weights = getattr(spec_model, "weights", None)
    if weights:
        load_weights(model, weights, field="model.weights")
    logger.debug("built %s (%s): %d parameters", kind, type(model).__name__, num_parameters(model))
    return model


def build_task(spec: ExperimentSpec, *, teacher: nn.Module | None = None) -> Task:
    """Build the task of a spec's model family.

    Args:
        spec: a validated experiment spec.
        teacher: for families that distil from a trained teacher (SAR-KD students): the
            frozen teacher. When None and the spec distils, it is loaded from
            `spec.distill.teacher` (`floodlab.tasks.sarkd.load_teacher`).

    Returns:
        The task, its networks on the CPU in training mode.

    Raises:
        KeyError: the model kind has no task.
        ValueError: a teacher is given to a family that does not distil from one.
    """
    fam = family(str(spec.model.kind))
    if fam.spec.takes_teacher:
        task = fam.task(spec, teacher=teacher)  # type: ignore[call-arg]
    elif teacher is not None:
        takers = sorted(k for k, f in FAMILIES.items() if f.spec.takes_teacher)
        raise ValueError(
            f"a teacher applies to students of model.kind {takers}, not model.kind={fam.kind!r}"
        )
    else:
        task = fam.task(spec)
    logger.debug("built %s: %d trainable parameters", type(task).__name__, task.num_parameters())
    return task
