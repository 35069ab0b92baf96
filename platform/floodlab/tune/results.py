"""Sweep results on disk: trials.csv, best.yaml, pareto.csv/png, sweep.json; finding sweeps.

The sweep directory's layout and its ``latest`` link are `floodlab.tracking.sweepdir.SweepDir`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from floodlab.io import atomic_write_text, read_json_object, write_json
from floodlab.specs import ExperimentSpec, dump_spec, spec_to_dict, validate_data, with_values
from floodlab.specs.train import METRIC_PATTERN
from floodlab.specs.tune import TuneSpec
from floodlab.tracking.sweepdir import SWEEP_SPEC as SWEEP_SPEC
from floodlab.tracking.sweepdir import TRIALS_DIR as TRIALS_DIR
from floodlab.tracking.sweepdir import SweepDir
from floodlab.tune.pareto import non_dominated, plot_front

logger = logging.getLogger(__name__)

TRIALS_CSV = "trials.csv"
BEST_YAML = "best.yaml"
PARETO_CSV = "pareto.csv"
PARETO_PNG = "pareto.png"
SWEEP_JSON = "sweep.json"

# Trial statuses in trials.csv. PRUNED: stopped early by the scheduler (ASHA);
# INTERRUPTED: running when the sweep was interrupted (a resume runs it again).
TERMINATED, PRUNED, ERROR = "TERMINATED", "PRUNED", "ERROR"
RUNNING, PENDING, INTERRUPTED = "RUNNING", "PENDING", "INTERRUPTED"
FINISHED = (TERMINATED, PRUNED)
_BEST_PREFIX = "best:"
_METRIC = re.compile(METRIC_PATTERN)


@dataclass
class TrialRecord:
    """One trial of a sweep, as trials.csv stores it.

    Attributes:
        trial_id: Tune's trial id (also the name of the trial's run directory).
        status: TERMINATED, PRUNED, ERROR, RUNNING, PENDING or INTERRUPTED.
        params: searched dotted path -> sampled value (conditional params may be absent).
        final: metric -> value at the last reported epoch.
        best: metric -> best value over the reported epochs (objectives and pruning metric).
        epochs: epochs reported.
        run_dir: the trial's run directory, relative to the sweep directory.
        error: one-line error message of an errored trial.
    """

    trial_id: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    epochs: int = 0
    run_dir: str = ""
    error: str = ""

    def objective_values(self, tune: TuneSpec) -> list[float | None]:
        """The final value of every objective (None when not reported)."""
        return [self.final.get(o.metric) for o in tune.objectives]


def metric_columns(records: list[TrialRecord], tune: TuneSpec) -> list[str]:
    """Reported metric names, objectives first, then the rest sorted."""
    first = [o.metric for o in tune.objectives]
    pruning, _ = tune.pruning_metric()
    if pruning not in first:
        first.append(pruning)
    rest = sorted({k for r in records for k in r.final} - set(first))
    return first + rest


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def trials_csv_text(records: list[TrialRecord], tune: TuneSpec) -> str:
    """trials.csv: one row per trial with its params, final and best metrics and status."""
    params = list(tune.space)
    metrics = metric_columns(records, tune)
    best_cols = [o.metric for o in tune.objectives]
    header = [
        "trial_id",
        "status",
        "epochs",
        *params,
        *metrics,
        *[_BEST_PREFIX + m for m in best_cols],
        "run_dir",
        "error",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r in records:
        writer.writerow(
            [
                r.trial_id,
                r.status,
                r.epochs,
                *[_cell(r.params.get(p)) for p in params],
                *[_cell(r.final.get(m)) for m in metrics],
                *[_cell(r.best.get(m)) for m in best_cols],
                r.run_dir,
                r.error,
            ]
        )
    return out.getvalue()


def _parse(text: str) -> Any:
    """A CSV cell back to its YAML type (0.5 -> float, true -> bool, '' -> None)."""
    if text == "":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def read_trials_csv(path: Path, tune: TuneSpec) -> list[TrialRecord]:
    """Load trials.csv written by `trials_csv_text`."""
    records: list[TrialRecord] = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            params = {p: _parse(row[p]) for p in tune.space if row.get(p, "") != ""}
            final, best = {}, {}
            for key, text in row.items():
                if key is None or text in ("", None):
                    continue
                if key.startswith(_BEST_PREFIX):
                    best[key[len(_BEST_PREFIX) :]] = float(text)
                elif _METRIC.match(key):
                    final[key] = float(text)
            records.append(
                TrialRecord(
                    trial_id=row["trial_id"],
                    status=row["status"],
                    params=params,
                    final=final,
                    best=best,
                    epochs=int(row["epochs"] or 0),
                    run_dir=row["run_dir"],
                    error=row["error"],
                )
            )
    return records


def ranked(records: list[TrialRecord], tune: TuneSpec) -> list[TrialRecord]:
    """Trials best first by the first objective's final value; unscored trials last."""
    metric, mode = tune.objectives[0].metric, tune.objectives[0].mode

    def key(r: TrialRecord) -> tuple[int, float]:
        v = r.final.get(metric)
        if r.status not in FINISHED or v is None or not math.isfinite(v):
            return (1, 0.0)
        return (0, -v if mode == "max" else v)

    return sorted(records, key=key)


def pareto_front(records: list[TrialRecord], tune: TuneSpec) -> list[TrialRecord]:
    """The finished trials no other finished trial dominates on the final objective values."""
    done = [r for r in records if r.status in FINISHED]
    points = [[v if v is not None else math.nan for v in r.objective_values(tune)] for r in done]
    modes = [o.mode for o in tune.objectives]
    return [done[i] for i in non_dominated(points, modes)]


def select_best(records: list[TrialRecord], tune: TuneSpec) -> TrialRecord | None:
    """The best trial: by the objective's final value, or for several objectives the
    Pareto-front trial best in the first objective. None when no trial finished."""
    pool = pareto_front(records, tune) if len(tune.objectives) > 1 else records
    for r in ranked(pool, tune):
        v = r.final.get(tune.objectives[0].metric)
        if r.status in FINISHED and v is not None and math.isfinite(v):
            return r
    return None


def best_spec(spec: ExperimentSpec, best: TrialRecord) -> ExperimentSpec:
    """The full resolved spec of the best trial, as a plain training spec.

    `tune` is dropped and the name becomes `<experiment>-best`, so `floodlab train best.yaml`
    trains it as a new experiment next to the sweep's.
    """
    trial_spec = with_values(spec, best.params, source=f"trial {best.trial_id}")
    data = spec_to_dict(trial_spec)
    data["tune"] = None
    data["name"] = f"{spec.name}-best"
    data["description"] = f"best trial {best.trial_id} of sweep {spec.name}" + (
        f": {spec.description}" if spec.description else ""
    )
    return validate_data(data, f"best trial {best.trial_id}")


def write_best_yaml(path: Path, spec: ExperimentSpec, best: TrialRecord) -> Path:
    """Write best.yaml (atomically) and return its path."""
    header = (
        f"# Best trial {best.trial_id} of a floodlab sweep of '{spec.name}'.\n"
        f"# Train it with: floodlab train {path}\n"
    )
    atomic_write_text(path, header + dump_spec(best_spec(spec, best)))
    return path


def write_pareto(
    sweep_dir: Path, records: list[TrialRecord], tune: TuneSpec
) -> tuple[Path, Path | None]:
    """Write pareto.csv (the non-dominated trials) and the Pareto-front PNG."""
    front = pareto_front(records, tune)
    csv_path = sweep_dir / PARETO_CSV
    atomic_write_text(csv_path, trials_csv_text(ranked(front, tune), tune))
    done = [r for r in records if r.status in FINISHED]
    if not done:
        return csv_path, None
    points = [[v if v is not None else math.nan for v in r.objective_values(tune)] for r in done]
    ids = {r.trial_id for r in front}
    png = plot_front(
        sweep_dir / PARETO_PNG,
        [r.trial_id for r in done],
        points,
        [i for i, r in enumerate(done) if r.trial_id in ids],
        [o.metric for o in tune.objectives],
        [o.mode for o in tune.objectives],
        title=f"{sweep_dir.parent.name} / {sweep_dir.name}",
    )
    return csv_path, png


def status_counts(records: list[TrialRecord]) -> dict[str, int]:
    """How many trials are in each status."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def write_sweep_json(path: Path, summary: dict[str, Any]) -> None:
    """Atomically write sweep.json (non-finite numbers become null)."""
    write_json(path, summary)


def read_sweep_json(sweep_dir: Path) -> dict[str, Any]:
    """sweep.json of a sweep directory, or {} when it has none yet."""
    return read_json_object(sweep_dir / SWEEP_JSON)


def resolve_sweep(ref: str | Path, root: str | Path = "runs") -> Path:
    """The directory of the sweep `ref` names (see `SweepDir.open`).

    Raises:
        FloodlabError: when nothing matches; the message lists the sweeps found.
    """
    return SweepDir.open(ref, root).path
