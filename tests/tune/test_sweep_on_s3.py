"""A sweep whose store and runs root are on object storage (a real S3-protocol server on
127.0.0.1): interrupted, resumed from a machine with nothing local, its results and every
trial's run at the sweep's URL."""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import s3fs
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.specs import ExperimentSpec, dump_spec
from floodlab.tracking import RunDir, SweepDir
from floodlab.tracking.home import working_copy
from floodlab.tune import SweepProgress, run_sweep
from floodlab.tune import results as res

from .conftest import space

pytestmark = [pytest.mark.ray, pytest.mark.slow]
S3_BUCKET = "floodlab-test"


def test_a_sweep_on_s3_resumes_from_its_url_and_leaves_everything_there(
    sweep_spec: Callable[..., ExperimentSpec],
    ray_session: object,
    s3_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"
    root = f"{base}/runs"
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    spec = sweep_spec(
        "sweep_flora.yaml",
        space({"loss.seg.dice": {"type": "float", "low": 0.2, "high": 2.0}}),
        "tune.num_trials=2",
        "tune.max_concurrent=1",
        "tune.scheduler={kind: fifo}",
        f"logging.root={root}",
        f"data.store={base}/s1f11.zarr",  # made from synthetic chips and uploaded first
        "data.synthetic={chips: 12, size: 64, seed: 1}",
    )
    assert spec.tune is not None

    def interrupt(p: SweepProgress) -> None:
        if p.event == "complete" and p.finished == 1:  # what Ctrl+C does
            os.kill(os.getpid(), signal.SIGUSR1)

    try:
        first = run_sweep(spec, progress=interrupt)
        assert first.interrupted and first.location.startswith(f"{root}/{spec.name}/sweep-")
        finished = {r.trial_id for r in first.records if r.status in res.FINISHED}
        assert len(finished) == 1

        shutil.rmtree(working_copy(root))  # resumed on another machine: nothing local
        spec_file = tmp_path / "sweep.yaml"
        spec_file.write_text(dump_spec(spec))
        out = CliRunner().invoke(main, ["tune", str(spec_file), "--resume"])
        assert out.exit_code == 0, out.output
        assert f"best run:    {first.location}/trials/" in out.output

        fs = s3fs.S3FileSystem()
        fs.invalidate_cache()
        prefix = first.location.removeprefix("s3://") + "/"
        objects = {p.removeprefix(prefix) for p in fs.find(first.location)}
        assert {res.TRIALS_CSV, res.BEST_YAML, "sweep.json", "tune/tuner.pkl"} <= objects
        trial_ids = {o.split("/")[1] for o in objects if o.startswith("trials/")}
        assert len(trial_ids) == 2 and finished <= trial_ids
        for trial_id in trial_ids:  # every trial is a whole run at the sweep's URL
            run = RunDir(f"{first.location}/trials/{trial_id}").pull()
            assert [r["epoch"] for r in run.read_metrics()] == [1, 2]
            assert [c["epoch"] for c in run.checkpoints()] == [2]  # keep_checkpoints=1

        shutil.rmtree(working_copy(root))
        out = CliRunner().invoke(main, ["trials", f"{spec.name}/latest", "--root", root])
        assert out.exit_code == 0, out.output
        assert f"{first.location}  (2 of 2 trials)" in out.output
        assert SweepDir.open(f"{spec.name}/latest", root).where == first.location
        assert os.listdir(work) == []  # no local runs/ folder, no folder named "s3:"
    finally:
        shutil.rmtree(working_copy(root), ignore_errors=True)
