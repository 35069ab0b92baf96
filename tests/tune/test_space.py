"""The search-space compiler: bounds, log, step, categorical, `when:` conditions, defaults."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest

from floodlab.errors import SpecError
from floodlab.specs import load_spec, spec_to_dict, validate_data
from floodlab.specs.tune import TuneSpec
from floodlab.tune.space import (
    apply_point,
    conditions_hold,
    default_point,
    define_by_run,
    ordered_params,
)

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _tune(space: dict[str, Any], **kw: Any) -> TuneSpec:
    return TuneSpec.model_validate({"space": space, **kw})


def _sample(tune: TuneSpec, n: int, seed: int = 0) -> tuple[optuna.Study, list[dict[str, Any]]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    fn = define_by_run(tune)
    points = []
    for _ in range(n):
        trial = study.ask()
        points.append(fn.sample(trial))
        study.tell(trial, 0.0)
    return study, points


def test_bounds_log_step_and_choices_are_honoured() -> None:
    tune = _tune(
        {
            "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "loss.seg.dice": {"type": "float", "low": 0.0, "high": 2.0, "step": 0.25},
            "trainer.batch_size": {"type": "int", "low": 2, "high": 10, "step": 2},
            "model.fusion.heads": {"type": "int", "low": 1, "high": 8, "log": True},
            "loss.decouple": {"type": "categorical", "choices": ["none", "stopgrad", "pcgrad"]},
        }
    )
    study, points = _sample(tune, 60)
    for p in points:
        assert 1e-4 <= p["optim.lr"] <= 1e-1
        assert p["loss.seg.dice"] in {i * 0.25 for i in range(9)}
        assert p["trainer.batch_size"] in {2, 4, 6, 8, 10}
        assert 1 <= p["model.fusion.heads"] <= 8 and isinstance(p["model.fusion.heads"], int)
        assert p["loss.decouple"] in {"none", "stopgrad", "pcgrad"}
    dists = study.trials[0].distributions
    assert dists["optim.lr"].log and dists["model.fusion.heads"].log
    assert dists["loss.seg.dice"].step == 0.25 and dists["trainer.batch_size"].step == 2
    # A log scale spreads samples over decades: some below 1e-3, some above 1e-2.
    lrs = [p["optim.lr"] for p in points]
    assert min(lrs) < 1e-3 and max(lrs) > 1e-2
    assert {p["loss.decouple"] for p in points} == {"none", "stopgrad", "pcgrad"}


def test_conditional_param_is_sampled_only_when_its_condition_holds() -> None:
    # Declared before the parameter it depends on: the compiler must reorder.
    tune = _tune(
        {
            "model.fusion.gate_init": {
                "type": "float",
                "low": 0.0,
                "high": 0.2,
                "when": {"model.fusion.film": True},
            },
            "model.fusion.window": {
                "type": "categorical",
                "choices": [2, 4, 8],
                "when": {"loss.decouple": ["stopgrad", "pcgrad"]},
            },
            "model.fusion.film": {"type": "categorical", "choices": [True, False]},
            "loss.decouple": {"type": "categorical", "choices": ["none", "stopgrad", "pcgrad"]},
        }
    )
    order = [p for p, _ in ordered_params(tune)]
    assert order.index("model.fusion.film") < order.index("model.fusion.gate_init")
    assert order.index("loss.decouple") < order.index("model.fusion.window")
    _, points = _sample(tune, 40, seed=1)
    for p in points:
        assert ("model.fusion.gate_init" in p) == (p["model.fusion.film"] is True)
        assert ("model.fusion.window" in p) == (p["loss.decouple"] != "none")
    assert any("model.fusion.gate_init" in p for p in points)
    assert any("model.fusion.gate_init" not in p for p in points)


def test_condition_on_an_unsampled_param_is_false_and_bools_are_not_numbers() -> None:
    tune = _tune(
        {
            "model.fusion.film": {"type": "categorical", "choices": [True, False]},
            "model.fusion.gate_init": {
                "type": "float",
                "low": 0.0,
                "high": 0.2,
                "when": {"model.fusion.film": True},
            },
            "loss.seg.boundary": {
                "type": "float",
                "low": 0.0,
                "high": 1.0,
                "when": {"model.fusion.gate_init": 0.1},
            },
        }
    )
    chained = dict(tune.space)["loss.seg.boundary"]
    assert not conditions_hold(chained, {"model.fusion.film": False})
    numeric = _tune(
        {
            "a.b": {"type": "int", "low": 0, "high": 1, "when": {"c.d": 1}},
            "c.d": {"type": "categorical", "choices": [True, 1]},
        }
    )
    assert not conditions_hold(numeric.space["a.b"], {"c.d": True})
    assert conditions_hold(numeric.space["a.b"], {"c.d": 1})


def test_condition_cycle_is_a_spec_error() -> None:
    tune = _tune(
        {
            "a.x": {"type": "float", "low": 0, "high": 1, "when": {"b.y": 1.0}},
            "b.y": {"type": "categorical", "choices": [1.0], "when": {"a.x": 0.5}},
        }
    )
    with pytest.raises(SpecError, match="cycle"):
        ordered_params(tune)


def test_int_log_with_step_is_rejected_by_the_spec() -> None:
    with pytest.raises(ValueError, match="step == 1"):
        _tune({"a.b": {"type": "int", "low": 1, "high": 64, "log": True, "step": 2}})


def test_default_point_takes_the_spec_values_inside_the_space() -> None:
    spec = load_spec(EXPERIMENTS / "sweep_flora.yaml")
    point = default_point(spec)
    data = spec_to_dict(spec)
    assert point["loss.seg.dice"] == data["loss"]["seg"]["dice"]
    assert point["model.fusion.window"] == 4
    assert point["model.fusion.film"] is True
    # Out of its searched range (or choices), a default is left for Optuna to sample.
    raw = spec_to_dict(spec)
    raw["tune"]["space"]["model.fusion.window"] = {"type": "categorical", "choices": [2, 8]}
    raw["tune"]["space"]["loss.seg.dice"] = {"type": "float", "low": 1.5, "high": 2.0}
    narrowed = validate_data(raw)
    point = default_point(narrowed)
    assert "model.fusion.window" not in point and "loss.seg.dice" not in point
    assert "loss.rec.ssim" in point


def test_apply_point_revalidates_and_names_the_bad_field() -> None:
    spec = load_spec(EXPERIMENTS / "sweep_flora.yaml")
    trial = apply_point(spec, {"loss.seg.dice": 1.25, "model.fusion.film": False}, "trial t1")
    assert trial.loss.seg.dice == 1.25 and trial.model.fusion.film is False
    assert trial.tune == spec.tune  # trials keep the space (TensorBoard HParams keys)
    with pytest.raises(SpecError) as err:
        apply_point(spec, {"model.fusion.scales": 5}, "trials/t2")
    assert "trials/t2" in str(err.value) and "fusion.scales" in str(err.value)


def test_optuna_search_enqueues_the_defaults_first_and_pickles_for_resume() -> None:
    from ray.tune.search.optuna import OptunaSearch

    from floodlab.tune.tuner import build_searcher

    spec = load_spec(EXPERIMENTS / "sweep_flora.yaml")
    searcher = build_searcher(spec)
    assert isinstance(searcher, OptunaSearch)
    first = searcher.suggest("t0")
    assert first == default_point(spec)
    second = searcher.suggest("t1")
    assert set(second) == set(spec.tune.space) and second != first
    # Tune saves the searcher with plain pickle to resume a sweep.
    clone = pickle.loads(pickle.dumps(searcher.__dict__))
    assert clone["_ot_study"].trials[0].params == first
    # Same seed, same suggestions.
    again = build_searcher(spec)
    again.suggest("t0")
    assert again.suggest("t1") == second
