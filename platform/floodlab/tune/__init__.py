"""Hyperparameter sweeps: search space -> Optuna, Ray Tune wiring, results and Pareto export."""

from floodlab.tune.export import SweepProgress, SweepResult, export_results
from floodlab.tune.results import (
    TrialRecord,
    pareto_front,
    ranked,
    read_sweep_json,
    read_trials_csv,
    resolve_sweep,
    select_best,
)
from floodlab.tune.space import DefineByRun, apply_point, default_point, define_by_run
from floodlab.tune.tuner import (
    TrialResources,
    find_sweep,
    plan_resources,
    run_sweep,
)

__all__ = [
    "DefineByRun",
    "SweepProgress",
    "SweepResult",
    "TrialRecord",
    "TrialResources",
    "apply_point",
    "default_point",
    "define_by_run",
    "export_results",
    "find_sweep",
    "pareto_front",
    "plan_resources",
    "ranked",
    "read_sweep_json",
    "read_trials_csv",
    "resolve_sweep",
    "run_sweep",
    "select_best",
]
