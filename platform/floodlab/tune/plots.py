"""Pictures of a sweep beside trials.csv: the optimisation history and parameter importances.

* ``history.png``: each objective of every finished trial (completed or pruned) in the
  order the trials finished, with the running best; the order comes from the trials' run
  directories (the time of each trial's last epoch record), so a resumed sweep and a
  sweep directory copied elsewhere draw the same picture.
* ``importance.png``: Optuna's parameter importances
  (`optuna.importance.get_param_importances`) per objective: fANOVA seeded with
  ``tune.seed`` where scikit-learn is installed (fANOVA's random forests need it), else
  PED-ANOVA (`importance_method`), computed from the finished trials' sampled values and final objective values. Skipped,
  with the reason returned (and logged), when fewer than 2 trials finished or fewer than 2
  parameters were sampled in every finished trial.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floodlab.io import save_figure
from floodlab.specs.tune import CategoricalParam, FloatParam, TuneSpec
from floodlab.tracking.rundir import RunDir
from floodlab.tune import results as res

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

logger = logging.getLogger(__name__)

HISTORY_PNG = "history.png"
IMPORTANCE_PNG = "importance.png"


@dataclass
class History:
    """One objective over the finished trials, in the order they finished.

    Attributes:
        metric: the objective's metric.
        mode: "max" or "min".
        trial_ids: the trials, in completion order.
        values: each trial's final value of `metric`.
        best: the best value so far after each trial.
    """

    metric: str
    mode: str
    trial_ids: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    best: list[float] = field(default_factory=list)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def finished_at(sweep_dir: Path, record: res.TrialRecord) -> float:
    """When a trial finished: the ``timestamp`` of its run's last epoch record (inf if none)."""
    records = RunDir(sweep_dir / record.run_dir).read_metrics()
    stamp = records[-1].get("timestamp") if records else None
    return float(stamp) if isinstance(stamp, int | float) and _finite(stamp) else math.inf


def completion_order(sweep_dir: Path, records: list[res.TrialRecord]) -> list[res.TrialRecord]:
    """The finished trials (completed or pruned) in the order they finished."""
    done = [r for r in records if r.status in res.FINISHED]
    return sorted(done, key=lambda r: (finished_at(sweep_dir, r), r.trial_id))


def optimisation_history(
    sweep_dir: Path, records: list[res.TrialRecord], tune: TuneSpec
) -> list[History]:
    """Per objective: the finished trials' final values in completion order, running best."""
    ordered = completion_order(sweep_dir, records)
    histories = []
    for o in tune.objectives:
        h = History(o.metric, o.mode)
        for r in ordered:
            value = r.final.get(o.metric)
            if not _finite(value):
                continue
            assert value is not None
            h.trial_ids.append(r.trial_id)
            h.values.append(float(value))
            pick = max if o.mode == "max" else min
            h.best.append(pick(h.best[-1], float(value)) if h.best else float(value))
        histories.append(h)
    return histories


def plot_history(histories: list[History], path: str | Path, *, title: str = "") -> Path | None:
    """Draw `histories` (one panel per objective) into the PNG `path`; None when no trial
    finished with a value."""
    if not any(h.values for h in histories):
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6 * len(histories)), constrained_layout=True)
    axes = fig.subplots(len(histories), 1, squeeze=False)[:, 0]
    for ax, h in zip(axes, histories, strict=True):
        x = list(range(1, len(h.values) + 1))
        ax.scatter(x, h.values, s=24, c="tab:blue", label="trial")
        ax.step(x, h.best, where="post", c="tab:red", label=f"best so far ({h.mode})")
        if len(x) <= 20:
            for xi, yi, trial_id in zip(x, h.values, h.trial_ids, strict=True):
                ax.annotate(
                    trial_id, (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points"
                )
        ax.set_xlabel("trial, in the order trials finished")
        ax.set_ylabel(h.metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "optimisation history")
    return save_figure(fig, path)


def _distribution(param: Any) -> BaseDistribution:
    """The Optuna distribution a `tune.space` parameter samples from."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(param, CategoricalParam):
        return CategoricalDistribution(list(param.choices))
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    return IntDistribution(param.low, param.high, log=param.log, step=param.step)


def importance_method() -> str:
    """The importance evaluator this environment runs: "fANOVA" (needs scikit-learn, which
    floodlab does not require) or "PED-ANOVA" (Optuna alone)."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return "PED-ANOVA"
    return "fANOVA"


def _evaluator(seed: int | None) -> Any:
    import optuna

    if importance_method() == "fANOVA":
        return optuna.importance.FanovaImportanceEvaluator(seed=seed)
    return optuna.importance.PedAnovaImportanceEvaluator()


def param_importances(
    records: list[res.TrialRecord], tune: TuneSpec
) -> tuple[dict[str, dict[str, float]], str]:
    """Optuna's parameter importances per objective, from the finished trials.

    Returns:
        (objective metric -> {param: importance}, ""), or ({}, the reason it was skipped).
    """
    import optuna

    done = [r for r in records if r.status in res.FINISHED]
    if len(done) < 2:
        return {}, f"parameter importances need at least 2 finished trials, got {len(done)}"
    shared = set(tune.space)
    for r in done:
        shared &= set(r.params)
    if len(shared) < 2:
        return {}, (
            f"parameter importances need at least 2 parameters sampled in every finished "
            f"trial, got {sorted(shared)}"
        )
    distributions = {p: _distribution(tune.space[p]) for p in shared}
    out: dict[str, dict[str, float]] = {}
    for o in tune.objectives:
        study = optuna.create_study(direction="maximize" if o.mode == "max" else "minimize")
        for r in done:
            value = r.final.get(o.metric)
            if not _finite(value):
                continue
            try:
                study.add_trial(
                    optuna.trial.create_trial(
                        params={p: r.params[p] for p in shared},
                        distributions=distributions,
                        value=value,
                    )
                )
            except ValueError as e:  # a value outside its distribution (edited trials.csv)
                logger.warning("importances: trial %s left out (%s)", r.trial_id, e)
        if len(study.trials) < 2:
            return {}, f"parameter importances need at least 2 trials with a value of {o.metric}"
        evaluator = _evaluator(tune.seed)
        out[o.metric] = dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    return out, ""


def plot_importances(
    importances: dict[str, dict[str, float]],
    path: str | Path,
    *,
    title: str = "",
    method: str = "fANOVA",
) -> Path:
    """Horizontal bars of each objective's parameter importances (computed by `method`)
    into the PNG `path`."""
    from matplotlib.figure import Figure

    n = max(len(v) for v in importances.values())
    fig = Figure(figsize=(6.5 * len(importances), 1.2 + 0.45 * n), constrained_layout=True)
    axes = fig.subplots(1, len(importances), squeeze=False)[0]
    for ax, (metric, values) in zip(axes, importances.items(), strict=True):
        names = list(values)[::-1]  # the most important on top
        ax.barh(names, [values[p] for p in names], color="tab:blue")
        ax.set_xlabel(f"importance for {metric} ({method})")
        ax.set_xlim(0, 1)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title or "parameter importances")
    return save_figure(fig, path)


def write_sweep_plots(
    sweep_dir: Path, records: list[res.TrialRecord], tune: TuneSpec, *, title: str = ""
) -> dict[str, Any]:
    """Write history.png and importance.png into `sweep_dir`; a failure is logged, never raised.

    Returns:
        ``history_png``/``importance_png``: the written file names (None when not written),
        ``importance_note``: why importances were skipped ("" when they were not).
    """
    out: dict[str, Any] = {"history_png": None, "importance_png": None, "importance_note": ""}
    try:
        histories = optimisation_history(sweep_dir, records, tune)
        if plot_history(histories, sweep_dir / HISTORY_PNG, title=title) is not None:
            out["history_png"] = HISTORY_PNG
    except Exception:  # a picture must never lose a sweep's results
        logger.warning("could not draw %s", sweep_dir / HISTORY_PNG, exc_info=True)
    try:
        importances, note = param_importances(records, tune)
        if importances:
            plot_importances(
                importances, sweep_dir / IMPORTANCE_PNG, title=title, method=importance_method()
            )
            out["importance_png"] = IMPORTANCE_PNG
        else:
            out["importance_note"] = note
            logger.info("no %s: %s", IMPORTANCE_PNG, note)
    except Exception as e:
        out["importance_note"] = f"parameter importances failed: {type(e).__name__}: {e}"
        logger.warning("could not draw %s", sweep_dir / IMPORTANCE_PNG, exc_info=True)
    return out
