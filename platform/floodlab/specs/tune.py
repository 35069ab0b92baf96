"""The `tune` section: search space by dotted spec paths, objectives, sampler and scheduler."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from floodlab.specs.base import StrictModel
from floodlab.specs.train import METRIC_PATTERN

Scalar = bool | int | float | str


class _Param(StrictModel):
    when: dict[str, Scalar | list[Scalar]] | None = Field(
        None,
        description="Sample this parameter only when every named (already sampled) path equals the value or is in the list.",
    )


def _check_range(low: float, high: float, log: bool) -> None:
    """The rules of every numeric range: `low <= high`, and `low > 0` on a log scale."""
    if low > high:
        raise ValueError(f"`low <= high` must hold, but got (low={low}, high={high})")
    if log and low <= 0:
        raise ValueError(f"`low > 0` must hold for a log scale, but got (low={low})")


class FloatParam(_Param):
    """A float in [low, high], optionally log-scaled or stepped."""

    type: Literal["float"] = "float"
    low: float = Field(description="Lower bound.")
    high: float = Field(description="Upper bound.")
    log: bool = Field(False, description="Sample on a log scale (low > 0).")
    step: float | None = Field(None, gt=0.0, description="Discretisation step.")

    @model_validator(mode="after")
    def _bounds(self) -> FloatParam:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("`step` and `log` cannot be used together")
        return self


class IntParam(_Param):
    """An integer in [low, high]."""

    type: Literal["int"] = "int"
    low: int = Field(description="Lower bound.")
    high: int = Field(description="Upper bound.")
    log: bool = Field(False, description="Sample on a log scale (low > 0).")
    step: int = Field(1, ge=1, description="Step.")

    @model_validator(mode="after")
    def _bounds(self) -> IntParam:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError(f"`step == 1` must hold for a log scale, but got (step={self.step})")
        return self


class CategoricalParam(_Param):
    """One of a list of choices."""

    type: Literal["categorical"] = "categorical"
    choices: list[Scalar] = Field(min_length=1, description="The choices.")


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]
PARAM_TYPES: tuple[str, ...] = ("float", "int", "categorical")


class ObjectiveSpec(StrictModel):
    """A metric to optimise."""

    metric: str = Field(pattern=METRIC_PATTERN, description="Reported metric, e.g. val/iou.")
    mode: Literal["max", "min"] = Field("max", description="Maximise or minimise.")


class TuneSchedulerSpec(StrictModel):
    """Trial scheduler (early stopping of bad trials)."""

    kind: Literal["asha", "fifo"] = Field(
        "asha", description="asha: async successive halving on the epoch counter; fifo: no pruning."
    )
    metric: str | None = Field(
        None,
        pattern=METRIC_PATTERN,
        description="Metric ASHA prunes on; default the single objective (required for multi-objective).",
    )
    mode: Literal["max", "min"] | None = Field(
        None, description="Mode of the pruning metric; default that objective's."
    )
    grace_period: int | None = Field(
        None,
        ge=1,
        description="Epochs every trial runs before it can be stopped; default one epoch past the LR warm-up and at least a quarter of trainer.epochs, so that trials can leave their trivial start (all one class) before the first cut.",
    )
    reduction_factor: float = Field(2.0, gt=1.0, description="ASHA reduction factor.")
    noise: float = Field(
        0.02,
        ge=0.0,
        description="Differences of the pruning metric up to this are noise (0.02 IoU: a few validation chips cannot resolve less): ASHA does not stop a trial within it of the rung's cutoff (it is judged again at the next rung).",
    )


class TuneSpec(StrictModel):
    """A hyperparameter sweep."""

    space: dict[str, ParamSpec] = Field(
        description="Dotted spec path -> distribution, e.g. loss.seg.dice."
    )
    objectives: list[ObjectiveSpec] = Field(
        default_factory=lambda: [ObjectiveSpec(metric="val/iou", mode="max")],
        min_length=1,
        description="One objective (single) or several (multi-objective, Pareto front).",
    )
    sampler: Literal["tpe", "cmaes", "random", "nsga2"] = Field(
        "tpe", description="Optuna sampler."
    )
    scheduler: TuneSchedulerSpec = Field(
        default_factory=TuneSchedulerSpec, description="Trial scheduler."
    )
    num_trials: int = Field(8, ge=1, description="Number of trials.")
    max_concurrent: int | None = Field(
        None, ge=1, description="Concurrent trials; default derived from the cluster's resources."
    )
    seed: int = Field(0, description="Sampler seed.")
    evaluate_defaults: bool = Field(
        True, description="Evaluate the spec's own values as the first trial."
    )
    in_trial: Literal["auto"] | bool = Field(
        "auto",
        description="true: a trial whose run has one training worker (trainer.num_workers=1) trains in the Tune trial's own process: no Ray Train controller, worker actor or process group to start, seconds less per trial; a failure is retried trainer.max_failures times from the last checkpoint, but a trial whose process is lost (its node gone) ends as an error. false: every trial trains through Ray Train, which restarts lost workers elsewhere. auto: true on floodlab's own local Ray (one machine), false on a cluster.",
    )

    @model_validator(mode="after")
    def _checks(self) -> TuneSpec:
        if not self.space:
            raise ValueError("tune.space must hold at least one parameter")
        multi = len(self.objectives) > 1
        if multi and self.scheduler.kind == "asha" and self.scheduler.metric is None:
            names = [o.metric for o in self.objectives]
            raise ValueError(
                "a multi-objective sweep with scheduler.kind=asha must name the metric it prunes on: "
                f"set tune.scheduler.metric to one of {names} (or use scheduler.kind=fifo)"
            )
        if self.sampler == "cmaes" and multi:
            raise ValueError(
                "sampler=cmaes optimises a single objective; use nsga2 for several objectives"
            )
        if self.sampler == "cmaes" and any(
            isinstance(p, CategoricalParam) for p in self.space.values()
        ):
            raise ValueError("sampler=cmaes cannot sample categorical parameters; use tpe or nsga2")
        for path, p in self.space.items():
            for cond in p.when or {}:
                if cond not in self.space:
                    raise ValueError(
                        f"space[{path!r}].when names {cond!r}, which is not a parameter of the space"
                    )
        return self

    def pruning_metric(self) -> tuple[str, str]:
        """The (metric, mode) the scheduler prunes on."""
        first = self.objectives[0]
        return self.scheduler.metric or first.metric, self.scheduler.mode or first.mode

    def space_param(self, path: str) -> Any:
        """The distribution of one searched path."""
        return self.space[path]
