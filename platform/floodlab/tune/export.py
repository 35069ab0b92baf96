"""What a sweep leaves behind: trials.csv, best.yaml, pareto.csv/png, history.png,
importance.png, sweep.json, the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floodlab.io import atomic_write_text
from floodlab.specs import ExperimentSpec, spec_hash
from floodlab.tune import results as res


@dataclass
class SweepProgress:
    """What a progress listener sees after every trial start, result, completion or error."""

    total: int
    finished: int
    running: int
    errored: int
    pruned: int
    event: str
    trial_id: str
    best_trial: str | None = None
    best_value: float | None = None
    metric: str = ""


@dataclass
class SweepResult:
    """What a sweep left behind (also what a job that evaluates the best trial needs)."""

    sweep_dir: Path
    spec: ExperimentSpec
    records: list[res.TrialRecord]
    best: res.TrialRecord | None
    best_yaml: Path | None
    trials_csv: Path
    pareto_csv: Path | None = None
    pareto_png: Path | None = None
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    history_png: Path | None = None
    importance_png: Path | None = None
    importance_note: str = ""  # why importance.png was not drawn
    location: str = ""  # where the sweep lives: its folder, or its URL on object storage

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's sampled values ({} when no trial finished)."""
        return dict(self.best.params) if self.best else {}

    @property
    def best_metrics(self) -> dict[str, float]:
        """The best trial's final metrics ({} when no trial finished)."""
        return dict(self.best.final) if self.best else {}

    @property
    def best_run_dir(self) -> Path | None:
        """The best trial's run directory (its checkpoints feed `floodlab evaluate`)."""
        return self.sweep_dir / self.best.run_dir if self.best else None

    @property
    def best_run(self) -> str | None:
        """Where the best trial's run lives (a path, or its URL on object storage)."""
        if self.best is None:
            return None
        base = self.location or str(self.sweep_dir)
        return f"{base.rstrip('/')}/{self.best.run_dir}"

    @property
    def tensorboard_command(self) -> str:
        """The command that opens every trial and the HParams dashboard."""
        return f"tensorboard --logdir {self.sweep_dir}"


def export_results(
    spec: ExperimentSpec,
    sweep_dir: Path,
    records: list[res.TrialRecord],
    *,
    max_concurrent: int | None = None,
    cpus_per_trial: float | None = None,
) -> SweepResult:
    """Write trials.csv, best.yaml, pareto.csv/png (multi-objective), history.png,
    importance.png (`floodlab.tune.plots`) and sweep.json."""
    from floodlab.tune.plots import write_sweep_plots

    assert spec.tune is not None
    tune = spec.tune
    trials_csv = sweep_dir / res.TRIALS_CSV
    atomic_write_text(trials_csv, res.trials_csv_text(res.ranked(records, tune), tune))
    best = res.select_best(records, tune)
    best_yaml = None
    if best is not None:
        best_yaml = res.write_best_yaml(sweep_dir / res.BEST_YAML, spec, best)
    pareto_csv = pareto_png = None
    if len(tune.objectives) > 1:
        pareto_csv, pareto_png = res.write_pareto(sweep_dir, records, tune)
    plots = write_sweep_plots(sweep_dir, records, tune, title=f"{spec.name} {sweep_dir.name}")
    counts = res.status_counts(records)
    ended = sum(counts.get(s, 0) for s in (*res.FINISHED, res.ERROR))
    interrupted = ended < tune.num_trials
    res.write_sweep_json(
        sweep_dir / res.SWEEP_JSON,
        {
            "experiment": spec.name,
            "sweep": sweep_dir.name,
            "spec_hash": spec_hash(spec),
            "num_trials": tune.num_trials,
            "status": "interrupted" if interrupted else "finished",
            "counts": counts,
            "objectives": [o.model_dump() for o in tune.objectives],
            "sampler": tune.sampler,
            "scheduler": tune.scheduler.kind,
            "max_concurrent": max_concurrent,
            "cpus_per_trial": cpus_per_trial,
            "best": None
            if best is None
            else {
                "trial_id": best.trial_id,
                "params": best.params,
                "metrics": best.final,
                "run_dir": best.run_dir,
            },
            "files": {
                "trials_csv": res.TRIALS_CSV,
                "best_yaml": res.BEST_YAML if best_yaml else None,
                "pareto_csv": res.PARETO_CSV if pareto_csv else None,
                "pareto_png": res.PARETO_PNG if pareto_png else None,
                "history_png": plots["history_png"],
                "importance_png": plots["importance_png"],
            },
            "importance_note": plots["importance_note"] or None,
        },
    )
    return SweepResult(
        sweep_dir=sweep_dir,
        spec=spec,
        records=records,
        best=best,
        best_yaml=best_yaml,
        trials_csv=trials_csv,
        pareto_csv=pareto_csv,
        pareto_png=pareto_png,
        interrupted=interrupted,
        counts=counts,
        history_png=sweep_dir / plots["history_png"] if plots["history_png"] else None,
        importance_png=sweep_dir / plots["importance_png"] if plots["importance_png"] else None,
        importance_note=plots["importance_note"],
    )
