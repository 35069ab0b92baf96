"""Per-trial resources and concurrency: as many trials as fit with their Train workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from floodlab.errors import ClusterError
from floodlab.specs import ExperimentSpec, TuneSpec, load_spec
from floodlab.tune import plan_resources
from floodlab.tune.tuner import build_sampler

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _spec(*overrides: str) -> ExperimentSpec:
    return load_spec(EXPERIMENTS / "sweep_flora.yaml", ["tune.num_trials=16", *overrides])


def _tune(*overrides: str) -> TuneSpec:
    tune = _spec(*overrides).tune
    assert tune is not None
    return tune


def test_concurrency_leaves_room_for_every_running_trials_workers() -> None:
    # One worker trains in the trial's own process: 1 CPU per trial, 8 at once on 8 CPUs.
    plan = plan_resources(_spec(), {"CPU": 8.0})
    assert (plan.cpus_per_trial, plan.max_concurrent, plan.in_trial) == (1.0, 8, True)
    assert plan.trial_resources() == {"cpu": 1.0}
    # Through Ray Train: 1 CPU for the trial + 1 worker x 1 CPU: 4 trials at once.
    plan = plan_resources(_spec("tune.in_trial=false"), {"CPU": 8.0})
    assert (plan.cpus_per_trial, plan.max_concurrent, plan.in_trial) == (2.0, 4, False)
    # tune.in_trial=auto (the default) trains in the trial on floodlab's own local Ray only;
    # on a cluster a lost node would end the trial, so Ray Train drives it there.
    assert not plan_resources(_spec(), {"CPU": 8.0}, local_ray=False).in_trial
    assert plan_resources(_spec("tune.in_trial=true"), {"CPU": 8.0}, local_ray=False).in_trial
    # Several workers always train through Ray Train.
    assert not plan_resources(_spec("trainer.num_workers=2"), {"CPU": 8.0}).in_trial
    # 1 + 2 x 1.5 = 4 CPUs per trial.
    plan = plan_resources(
        _spec("trainer.num_workers=2", "trainer.cpus_per_worker=1.5"), {"CPU": 8.0}
    )
    assert (plan.cpus_per_trial, plan.max_concurrent) == (4.0, 2)
    # Never more than the spec asks for, nor than there are trials.
    assert plan_resources(_spec("tune.max_concurrent=3"), {"CPU": 64.0}).max_concurrent == 3
    assert plan_resources(_spec("tune.num_trials=2"), {"CPU": 64.0}).max_concurrent == 2
    # Asking for more than fits is capped (admitting them would starve the workers).
    capped = _spec("tune.max_concurrent=10", "tune.in_trial=false")
    assert plan_resources(capped, {"CPU": 8.0}).max_concurrent == 4


def test_gpus_bound_concurrency_and_a_trial_that_cannot_fit_is_a_clear_error() -> None:
    plan = plan_resources(_spec("trainer.use_gpu=true"), {"CPU": 32.0, "GPU": 2.0})
    assert (plan.trial_resources(), plan.max_concurrent) == ({"cpu": 1.0, "gpu": 1.0}, 2)
    plan = plan_resources(
        _spec("trainer.use_gpu=true", "tune.in_trial=false"), {"CPU": 32.0, "GPU": 2.0}
    )
    assert (plan.worker_gpus, plan.max_concurrent) == (1.0, 2)
    with pytest.raises(ClusterError, match="num_workers"):
        plan_resources(_spec("trainer.num_workers=4"), {"CPU": 4.0})


def test_small_sweeps_start_model_based_sampling_early() -> None:
    import optuna

    tpe = build_sampler(_tune("tune.num_trials=8"))
    assert isinstance(tpe, optuna.samplers.TPESampler) and tpe._n_startup_trials == 2
    nsga = build_sampler(_tune("tune.num_trials=12", "tune.sampler=nsga2"))
    assert isinstance(nsga, optuna.samplers.NSGAIISampler)
    cma = build_sampler(
        _tune(
            "tune.sampler=cmaes", "tune.space={loss.seg.dice: {type: float, low: 0.1, high: 2.0}}"
        )
    )
    assert isinstance(cma, optuna.samplers.CmaEsSampler)
