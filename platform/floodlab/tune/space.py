"""Compile `tune.space` into an Optuna define-by-run function and apply sampled points to specs."""

from __future__ import annotations

import logging
import math
from typing import Any, Protocol

from floodlab.errors import SpecError
from floodlab.specs import ExperimentSpec, spec_to_dict, with_values
from floodlab.specs.paths import get_path
from floodlab.specs.tune import CategoricalParam, FloatParam, IntParam, TuneSpec

logger = logging.getLogger(__name__)

Param = FloatParam | IntParam | CategoricalParam


class SuggestTrial(Protocol):
    """The part of `optuna.Trial` the define-by-run function uses (Tune wraps the trial)."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        """Sample a float."""
        ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        """Sample an integer."""
        ...

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        """Sample one of the choices."""
        ...


def ordered_params(tune: TuneSpec) -> list[tuple[str, Param]]:
    """The searched parameters, each after every parameter its `when:` names.

    Declaration order is kept wherever the conditions allow it, so the same spec always
    samples in the same order (Optuna's samplers are order-sensitive under a seed).

    Raises:
        SpecError: when the `when:` conditions form a cycle.
    """
    pending = dict(tune.space)
    placed: list[tuple[str, Param]] = []
    done: set[str] = set()
    while pending:
        ready = [p for p, spec in pending.items() if set(spec.when or {}) <= done]
        if not ready:
            cycle = " -> ".join(sorted(pending))
            raise SpecError(
                [
                    f"tune.space: the `when:` conditions of {cycle} depend on each other in a "
                    "cycle; a parameter can only be conditioned on parameters sampled before it"
                ]
            )
        for path in ready:
            placed.append((path, pending.pop(path)))
            done.add(path)
    return placed


def _same(value: Any, expected: Any) -> bool:
    """Equality that keeps booleans apart from 0/1 (YAML `true` is not the number 1)."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    return bool(value == expected)


def conditions_hold(param: Param, sampled: dict[str, Any]) -> bool:
    """Whether every `when:` condition of `param` holds for the values sampled so far.

    A condition on a parameter that was not sampled (its own conditions failed) is false.
    """
    for path, expected in (param.when or {}).items():
        if path not in sampled:
            return False
        options = expected if isinstance(expected, list) else [expected]
        if not any(_same(sampled[path], option) for option in options):
            return False
    return True


def suggest(trial: SuggestTrial, path: str, param: Param) -> Any:
    """Sample one parameter with the matching `trial.suggest_*` call (log and step honoured)."""
    if isinstance(param, FloatParam):
        return trial.suggest_float(path, param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, IntParam):
        return trial.suggest_int(path, param.low, param.high, step=param.step, log=param.log)
    return trial.suggest_categorical(path, list(param.choices))


class DefineByRun:
    """Optuna define-by-run search space compiled from `tune.space`.

    Pass an instance as `OptunaSearch(space=...)`. A class rather than a closure because
    Tune pickles the searcher (and with it this object) to resume a sweep.

    Args:
        tune: the sweep's `tune` section.
    """

    def __init__(self, tune: TuneSpec):
        self.params = ordered_params(tune)

    def __call__(self, trial: SuggestTrial) -> dict[str, Any] | None:
        """Sample every parameter whose conditions hold, in dependency order.

        Returns:
            None: Tune's OptunaSearch collects the sampled values from the suggest calls.
        """
        self.sample(trial)
        return None

    def sample(self, trial: SuggestTrial) -> dict[str, Any]:
        """Sample a point and return it (for use outside Tune)."""
        sampled: dict[str, Any] = {}
        for path, param in self.params:
            if conditions_hold(param, sampled):
                sampled[path] = suggest(trial, path, param)
        return sampled


def define_by_run(tune: TuneSpec) -> DefineByRun:
    """Compile `tune.space` into a define-by-run function for `OptunaSearch(space=...)`."""
    return DefineByRun(tune)


def contains(param: Param, value: Any) -> bool:
    """Whether `value` lies in the distribution of `param` (bounds, step grid, choices)."""
    if isinstance(param, CategoricalParam):
        return any(_same(value, choice) for choice in param.choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not param.low <= value <= param.high:
        return False
    if isinstance(param, IntParam):
        return float(value).is_integer() and (int(value) - param.low) % param.step == 0
    if param.step is not None:
        k = (value - param.low) / param.step
        return math.isclose(k, round(k), abs_tol=1e-9)
    return True


def default_point(spec: ExperimentSpec) -> dict[str, Any]:
    """The spec's own values for the searched paths (Tune's `points_to_evaluate`).

    A conditional parameter is included only when its conditions hold for the spec's own
    values; a value outside its searched range is left out (and logged), so Optuna samples
    that parameter instead of failing on it.
    """
    if spec.tune is None:
        raise SpecError(["tune: this spec has no `tune` section; add tune.space to sweep"])
    data = spec_to_dict(spec)
    point: dict[str, Any] = {}
    for path, param in ordered_params(spec.tune):
        if not conditions_hold(param, point):
            continue
        value = get_path(data, path)
        if contains(param, value):
            point[path] = value
        else:
            logger.warning(
                "tune.evaluate_defaults: the spec's %s=%r lies outside tune.space.%s; "
                "the first trial samples it instead",
                path,
                value,
                path,
            )
    return point


def apply_point(spec: ExperimentSpec, point: dict[str, Any], source: str) -> ExperimentSpec:
    """The spec of one trial: the sweep spec with the sampled values applied and re-validated.

    Args:
        spec: the sweep spec.
        point: dotted path -> sampled value.
        source: what error messages name as the origin (e.g. the trial's directory).

    Raises:
        SpecError: when the combination of values is invalid for the spec.
    """
    return with_values(spec, point, source=source)
