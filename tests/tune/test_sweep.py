"""FLoRA sweeps end to end on Ray Tune + Ray Train: ASHA single-objective, NSGA-II Pareto."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.specs import ExperimentSpec, load_spec, spec_to_dict
from floodlab.specs.paths import get_path
from floodlab.tracking import RunDir
from floodlab.tracking.curves import plot_curves
from floodlab.tune import read_trials_csv, run_sweep
from floodlab.tune import results as res
from floodlab.tune.pareto import dominates

from .conftest import space

pytestmark = pytest.mark.ray

FLORA_SPACE = {
    "loss.seg.dice": {"type": "float", "low": 0.2, "high": 2.0},
    "loss.rec.ssim": {"type": "float", "low": 0.0, "high": 1.0},
    "model.fusion.film": {"type": "categorical", "choices": [True, False]},
    "model.fusion.gate_init": {
        "type": "float",
        "low": 0.0,
        "high": 0.2,
        "when": {"model.fusion.film": True},
    },
}


def _hparams_by_run(sweep_dir: Path) -> dict[str, dict[str, object]]:
    """Run name -> hyperparameters of every HParams session under the sweep directory."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import metadata

    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(sweep_dir))
    mux.Reload()
    sessions: dict[str, dict[str, object]] = {}
    for run, content in mux.PluginRunToTagToContent(metadata.PLUGIN_NAME).items():
        if metadata.SESSION_START_INFO_TAG in content:
            info = metadata.parse_session_start_info_plugin_data(
                content[metadata.SESSION_START_INFO_TAG]
            )
            sessions[run] = {
                k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                for k, v in info.hparams.items()
            }
    return sessions


def _trial_pids(sweep_dir: Path) -> dict[str, int]:
    """Trial id -> the process Tune ran the trial in (from Tune's own result files)."""
    pids: dict[str, int] = {}
    for path in sweep_dir.rglob("result.json"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            pids[row["trial_id"]] = row["pid"]
    return pids


@pytest.mark.parametrize("in_trial", [True, False], ids=["in_trial", "ray_train"])
def test_flora_asha_sweep_trains_every_trial_and_exports_the_best(
    sweep_spec: Callable[..., ExperimentSpec],
    ray_session: object,
    tmp_path: Path,
    in_trial: bool,
) -> None:
    spec = sweep_spec(
        "sweep_flora.yaml",
        space(FLORA_SPACE),
        "tune.num_trials=3",
        "tune.evaluate_defaults=false",
        "tune.scheduler={kind: asha, grace_period: 1, reduction_factor: 2}",
        f"tune.in_trial={str(in_trial).lower()}",
    )
    events: list[str] = []
    result = run_sweep(spec, progress=lambda p: events.append(p.event))

    assert not result.interrupted and len(result.records) == 3
    assert {r.status for r in result.records} <= {res.TERMINATED, res.PRUNED}, result.records
    assert events.count("start") == 3 and "result" in events
    pids = _trial_pids(result.sweep_dir)
    for r in result.records:
        run = result.sweep_dir / r.run_dir
        # Rank 0 wrote the trial's metrics and checkpoints: in the trial's own process, or
        # in a Ray Train worker of its own.
        assert (run / "spec.yaml").is_file() and (run / "metrics.jsonl").is_file()
        rank0 = json.loads((run / "workers" / "rank0.json").read_text())
        assert (rank0["pid"] == pids[r.trial_id]) is in_trial, (rank0, pids)
        # trainer.keep_checkpoints=1: the best checkpoint and the latest stay, either way.
        trial_run = RunDir(run)
        kept = trial_run.checkpoints()
        scores = {m["epoch"]: m["val/iou"] for m in trial_run.read_metrics()}
        best = max(scores, key=lambda e: (scores[e], e))
        assert {c["epoch"] for c in kept} == {best, max(scores)}, (kept, scores)
        assert 1 <= r.epochs <= 2 and math.isfinite(r.final["val/iou"])
        assert load_spec(run / "spec.yaml").loss.seg.dice == r.params["loss.seg.dice"]
        assert ("model.fusion.gate_init" in r.params) == (r.params["model.fusion.film"] is True)
        # curves.png shows every epoch the trial ran, pruned or not.
        expected = tmp_path / f"{r.trial_id}.png"
        plot_curves(trial_run.read_metrics(), expected, title=trial_run.name)
        assert trial_run.curves_path.read_bytes() == expected.read_bytes(), r.status

    rows = read_trials_csv(result.trials_csv, spec.tune)
    assert sorted(r.trial_id for r in rows) == sorted(r.trial_id for r in result.records)
    # best.yaml: a valid training spec with the best trial's sampled values, not the defaults.
    best = load_spec(result.best_yaml)
    assert best.tune is None and best.name == "sweep_flora-best"
    defaults = spec_to_dict(spec)
    for path, value in result.best_params.items():
        assert get_path(spec_to_dict(best), path) == value
        if path == "loss.seg.dice":
            assert value != get_path(defaults, path)
    assert result.best_run_dir is not None and result.best_run_dir.is_dir()

    # TensorBoard: one HParams session per trial, with the trial's sampled values.
    sessions = _hparams_by_run(result.sweep_dir)
    by_trial = {run.split("/")[1]: hp for run, hp in sessions.items() if run.startswith("trials/")}
    assert set(by_trial) == {r.trial_id for r in result.records}
    for r in result.records:
        assert set(FLORA_SPACE) <= set(by_trial[r.trial_id])
        assert by_trial[r.trial_id]["loss.seg.dice"] == pytest.approx(r.params["loss.seg.dice"])

    # The leaderboard CLI reads the same sweep.
    out = CliRunner().invoke(main, ["trials", str(result.sweep_dir)])
    assert out.exit_code == 0, out.output
    assert all(r.trial_id in out.output for r in result.records)
    assert "dice" in out.output and "val/iou" in out.output


def test_nsga2_sweep_writes_a_non_dominated_pareto_front(
    sweep_spec: Callable[..., ExperimentSpec], ray_session: object
) -> None:
    spec = sweep_spec(
        "sweep_flora_pareto.yaml",
        space(
            {
                "loss.seg.dice": {"type": "float", "low": 0.1, "high": 2.0},
                "loss.rec.charbonnier": {"type": "float", "low": 0.1, "high": 2.0},
            }
        ),
        "trainer.epochs=1",
        "tune.num_trials=3",
        "tune.scheduler={kind: fifo}",
    )
    result = run_sweep(spec)
    assert spec.tune is not None and result.pareto_csv is not None
    modes = [o.mode for o in spec.tune.objectives]
    done = [r for r in result.records if r.status in res.FINISHED]
    assert len(done) == 3
    front = read_trials_csv(result.pareto_csv, spec.tune)
    assert front
    values = {r.trial_id: [r.final["val/iou"], r.final["val/psnr"]] for r in done}
    front_ids = {r.trial_id for r in front}
    for r in front:
        assert not any(dominates(v, values[r.trial_id], modes) for v in values.values())
    for tid, v in values.items():
        if tid not in front_ids:
            assert any(dominates(values[f], v, modes) for f in front_ids)
    assert result.pareto_png is not None and result.pareto_png.stat().st_size > 0
    assert result.best is not None and result.best.trial_id in front_ids
