"""Sweep results without Ray: trials.csv round trip, best trial, best.yaml, Pareto, lookup."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from floodlab.errors import FloodlabError
from floodlab.specs import load_spec
from floodlab.tracking.sweepdir import SweepDir
from floodlab.tune import results as res
from floodlab.tune.hparams import has_session, write_hparams_config, write_trial_session
from floodlab.tune.pareto import dominates, non_dominated

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _records() -> list[res.TrialRecord]:
    return [
        res.TrialRecord(
            "t1",
            res.TERMINATED,
            {"loss.seg.dice": 0.5, "model.fusion.film": True},
            {"val/iou": 0.60, "val/psnr": 21.0, "val/loss": 0.4},
            {"val/iou": 0.62},
            4,
            "trials/t1",
        ),
        res.TrialRecord(
            "t2",
            res.PRUNED,
            {"loss.seg.dice": 1.5, "model.fusion.film": False},
            {"val/iou": 0.30, "val/psnr": 25.0},
            {"val/iou": 0.30},
            1,
            "trials/t2",
        ),
        res.TrialRecord(
            "t3",
            res.TERMINATED,
            {"loss.seg.dice": 1.0, "model.fusion.film": True},
            {"val/iou": 0.70, "val/psnr": 19.0},
            {"val/iou": 0.71},
            4,
            "trials/t3",
        ),
        res.TrialRecord(
            "t4",
            res.ERROR,
            {"loss.seg.dice": 1.9},
            {},
            {},
            0,
            "trials/t4",
            "TrainingError: loss became NaN at epoch 1",
        ),
    ]


def test_trials_csv_round_trips_params_metrics_and_status(tmp_path: Path) -> None:
    spec = load_spec(EXPERIMENTS / "sweep_flora_pareto.yaml")
    tune = spec.tune
    assert tune is not None
    raw = load_spec(EXPERIMENTS / "sweep_flora.yaml").tune
    assert raw is not None
    path = tmp_path / res.TRIALS_CSV
    path.write_text(res.trials_csv_text(_records(), raw))
    back = res.read_trials_csv(path, raw)
    assert [r.trial_id for r in back] == ["t1", "t2", "t3", "t4"]
    assert back[0].params == {"loss.seg.dice": 0.5, "model.fusion.film": True}
    assert back[1].status == res.PRUNED and back[1].epochs == 1
    assert back[2].final["val/iou"] == 0.70 and back[2].best["val/iou"] == 0.71
    assert back[3].error.startswith("TrainingError") and back[3].final == {}
    header = path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["trial_id", "status", "epochs"] and "best:val/iou" in header


def test_best_trial_and_best_yaml_is_a_plain_training_spec(tmp_path: Path) -> None:
    spec = load_spec(EXPERIMENTS / "sweep_flora.yaml")
    assert spec.tune is not None
    records = _records()
    assert [r.trial_id for r in res.ranked(records, spec.tune)][:3] == ["t3", "t1", "t2"]
    best = res.select_best(records, spec.tune)
    assert best is not None and best.trial_id == "t3"
    path = res.write_best_yaml(tmp_path / res.BEST_YAML, spec, best)
    trained = load_spec(path)
    assert trained.tune is None and trained.name == "sweep_flora-best"
    assert trained.loss.seg.dice == 1.0 and trained.model.fusion.film is True
    assert trained.model == spec.model.model_copy(update={"fusion": trained.model.fusion})
    # No finished trial -> no best.
    assert res.select_best([records[3]], spec.tune) is None


def test_non_dominated_matches_brute_force() -> None:
    rng = random.Random(0)
    for modes in (["max", "max"], ["max", "min"], ["min", "min", "max"]):
        points = [[rng.choice([0.1, 0.2, 0.3, 0.4]) for _ in modes] for _ in range(25)]
        front = non_dominated(points, modes)
        for i, p in enumerate(points):
            dominated = any(dominates(q, p, modes) for q in points)
            assert (i in front) == (not dominated)
        for i, j in itertools.combinations(front, 2):
            assert not dominates(points[i], points[j], modes)


def test_pareto_csv_and_plot_hold_only_non_dominated_trials(tmp_path: Path) -> None:
    spec = load_spec(EXPERIMENTS / "sweep_flora_pareto.yaml")
    assert spec.tune is not None
    csv_path, png = res.write_pareto(tmp_path, _records(), spec.tune)
    front = res.read_trials_csv(csv_path, spec.tune)
    # t1 (0.60, 21) t2 (0.30, 25) t3 (0.70, 19): none dominates another; t4 errored.
    assert {r.trial_id for r in front} == {"t1", "t2", "t3"}
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Multi-objective best: the front's best in the first objective.
    best = res.select_best(_records(), spec.tune)
    assert best is not None and best.trial_id == "t3"


def test_resolve_sweep_finds_latest_and_lists_what_exists(tmp_path: Path) -> None:
    for name in ("sweep-20260101-000000", "sweep-20260102-000000"):
        (tmp_path / "exp" / name).mkdir(parents=True)
        (tmp_path / "exp" / name / res.SWEEP_SPEC).write_text("name: exp\n")
        SweepDir(tmp_path / "exp" / name).mark_latest()  # as `SweepDir.create` does
    latest = tmp_path / "exp" / "sweep-20260102-000000"
    assert res.resolve_sweep("exp/latest", tmp_path) == latest
    assert res.resolve_sweep("exp", tmp_path) == latest
    assert res.resolve_sweep("exp/20260101-000000", tmp_path).name == "sweep-20260101-000000"
    assert res.resolve_sweep(latest) == latest
    with pytest.raises(FloodlabError, match="sweep-20260101-000000"):
        res.resolve_sweep("exp/sweep-nope", tmp_path)
    with pytest.raises(FloodlabError, match="no sweeps under"):
        res.resolve_sweep("other/latest", tmp_path)


def test_hparams_experiment_summary_parses(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    spec = load_spec(EXPERIMENTS / "sweep_flora.yaml")
    assert spec.tune is not None
    write_hparams_config(tmp_path, spec.tune, ["val/iou", "val/loss"])
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    experiment = metadata.parse_experiment_plugin_data(content)
    infos = {h.name: h for h in experiment.hparam_infos}
    assert set(infos) == set(spec.tune.space)
    assert infos["loss.seg.dice"].domain_interval.max_value == 2.0
    assert [v.number_value for v in infos["model.fusion.window"].domain_discrete.values] == [2, 4]
    assert [m.name.tag for m in experiment.metric_infos] == ["val/iou", "val/loss"]


def test_trial_session_records_the_hparams_of_a_pruned_trial(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, metadata

    logdir = tmp_path / "trials" / "t1" / "tensorboard"
    logdir.mkdir(parents=True)
    assert not has_session(logdir)
    write_trial_session(
        logdir,
        {"loss.seg.dice": 0.5, "model.fusion.film": True, "loss.decouple": "pcgrad"},
        "pruned",
    )
    assert has_session(logdir)
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    tags = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["loss.seg.dice"].number_value == 0.5
    assert start.hparams["model.fusion.film"].bool_value is True
    assert start.hparams["loss.decouple"].string_value == "pcgrad"
    end = metadata.parse_session_end_info_plugin_data(tags[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_SUCCESS
