"""Sweeps that go wrong: an interrupted sweep resumes; an invalid trial is recorded, not fatal."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.specs import ExperimentSpec, dump_spec, load_spec
from floodlab.tracking import RunDir
from floodlab.tune import SweepProgress, default_point, read_trials_csv, run_sweep
from floodlab.tune import results as res

from .conftest import space

pytestmark = pytest.mark.ray


@pytest.mark.parametrize("when", ["first_trial", "middle", "before_export"])
def test_interrupted_sweep_resumes_without_rerunning_finished_trials(
    sweep_spec: Callable[..., ExperimentSpec],
    ray_session: object,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    spec = sweep_spec(
        "sweep_flora.yaml",
        space(
            {
                "loss.seg.dice": {"type": "float", "low": 0.2, "high": 2.0},
                "model.fusion.gate_init": {"type": "float", "low": 0.0, "high": 0.2},
            }
        ),
        "tune.num_trials=3",
        "tune.max_concurrent=2",
        "tune.evaluate_defaults=true",
    )
    assert spec.tune is not None
    trials = spec.tune.num_trials

    def interrupt(p: SweepProgress) -> None:
        # What Ctrl+C does: Tune saves its state and returns.
        first_epoch = when == "first_trial" and p.event == "result" and p.finished == 0
        first_done = when == "middle" and p.event == "complete" and p.finished == 1
        if first_epoch or first_done:
            os.kill(os.getpid(), signal.SIGUSR1)

    if when == "before_export":
        # Every trial ends, then the driver dies before it writes the results.
        import floodlab.tune.tuner as tuner

        def crash(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(tuner, "export_results", crash)
        with pytest.raises(KeyboardInterrupt):
            run_sweep(spec)
        monkeypatch.undo()
        sweep_dir = res.resolve_sweep(f"{spec.name}/latest", spec.logging.root)
        finished = {t for t in os.listdir(sweep_dir / res.TRIALS_DIR)}
        assert len(finished) == trials
    else:
        first = run_sweep(spec, progress=interrupt)
        assert first.interrupted
        finished = {r.trial_id for r in first.records if r.status in res.FINISHED}
        assert len(finished) < trials
        if when == "middle":
            assert finished and read_trials_csv(first.trials_csv, spec.tune)

    started: list[str] = []
    resumed = run_sweep(
        spec,
        resume=True,
        progress=lambda p: started.append(p.trial_id) if p.event == "start" else None,
    )
    assert not resumed.interrupted
    assert not finished & set(started), "a finished trial ran again"
    assert len(resumed.records) == trials
    assert all(r.status in res.FINISHED for r in resumed.records), resumed.records
    assert finished <= {r.trial_id for r in resumed.records}
    # The first trial evaluated the spec's own values.
    assert default_point(spec) in [r.params for r in resumed.records]
    rows = read_trials_csv(resumed.trials_csv, spec.tune)
    assert len(rows) == trials
    # Every trial, restored or not, carries the metrics the sweep optimises and prunes on.
    header = resumed.trials_csv.read_text().splitlines()[0].split(",")
    for metric in ("val/iou", "val/loss", "train/loss"):
        assert metric in header
        assert all(r.final.get(metric) is not None for r in rows), (metric, rows)
    # No trial repeated or skipped an epoch. (A pruned trial's run may have finished the
    # epoch it was in when Tune stopped it.)
    for r in rows:
        epochs = [m["epoch"] for m in RunDir(resumed.sweep_dir / r.run_dir).read_metrics()]
        assert epochs == list(range(1, len(epochs) + 1)), (r.trial_id, epochs)
        assert len(epochs) == r.epochs or (r.status == res.PRUNED and len(epochs) > r.epochs)


def test_invalid_trial_is_recorded_as_error_and_the_sweep_finishes(
    sweep_spec: Callable[..., ExperimentSpec], ray_session: object, tmp_path: Path
) -> None:
    # widths [8, 16] allow at most 2 fused scales: sampling 3 is an invalid combination.
    spec = sweep_spec(
        "sweep_flora.yaml",
        space({"model.fusion.scales": {"type": "categorical", "choices": [2, 3]}}),
        "trainer.epochs=1",
        "tune.num_trials=3",
        "tune.sampler=random",
        "tune.seed=3",
        "tune.scheduler={kind: fifo}",
        "tune.evaluate_defaults=true",
    )
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_text(dump_spec(spec))
    out = CliRunner().invoke(main, ["tune", str(spec_file)])
    assert out.exit_code == 0, out.output
    assert "trials.csv" in out.output and "best.yaml" in out.output
    assert "tensorboard --logdir" in out.output

    sweep_dir = res.resolve_sweep(f"{spec.name}/latest", spec.logging.root)
    assert spec.tune is not None
    records = read_trials_csv(sweep_dir / res.TRIALS_CSV, spec.tune)
    assert len(records) == 3
    for r in records:
        if r.params["model.fusion.scales"] == 3:
            assert r.status == res.ERROR and "fusion.scales" in r.error
        else:
            assert r.status == res.TERMINATED and r.epochs == 1
    assert {r.status for r in records} == {res.ERROR, res.TERMINATED}
    best = yaml.safe_load((sweep_dir / res.BEST_YAML).read_text())
    assert best["model"]["fusion"]["scales"] == 2
    assert load_spec(sweep_dir / res.BEST_YAML).tune is None

    # --resume --retry-errored runs the errored points again (Tune gives each retry a new
    # trial id); the finished trial is kept as it was.
    started: list[str] = []
    again = run_sweep(
        spec,
        resume=True,
        retry_errored=True,
        progress=lambda p: started.append(p.trial_id) if p.event == "start" else None,
    )
    errored = [r for r in records if r.status == res.ERROR]
    assert len(started) == len(errored) and not set(started) & {r.trial_id for r in records}
    assert len(again.records) == spec.tune.num_trials
    finished = [r for r in records if r.status == res.TERMINATED]
    assert [r for r in again.records if r.status == res.TERMINATED] == finished
    retried = sorted(
        r.params["model.fusion.scales"] for r in again.records if r.trial_id in started
    )
    assert retried == sorted(r.params["model.fusion.scales"] for r in errored)


def test_retry_errored_without_resume_is_a_usage_error(tmp_path: Path) -> None:
    spec_file = Path(__file__).resolve().parents[2] / "experiments" / "sweep_flora.yaml"
    out = CliRunner().invoke(main, ["tune", str(spec_file), "--retry-errored"])
    assert out.exit_code == 2 and "--resume" in out.output
    out = CliRunner().invoke(
        main, ["tune", str(spec_file), "--resume", "--set", f"logging.root={tmp_path}"]
    )
    assert out.exit_code == 2 and "no sweeps under" in out.output
