"""Jobs on a real Ray head: submit the quickstart, follow it to success, read logs, stop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.cluster import wait_for_job

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"
# A few seconds of training: tiny synthetic data, one epoch.
TINY = [
    "trainer.epochs=1",
    "trainer.batch_size=4",
    "data.synthetic.chips=6",
    "data.synthetic.size=64",
    "data.patch_size=64",
    "logging.image_every=0",
]


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def _submit(args: list[str]) -> str:
    result = CliRunner().invoke(main, ["submit", *args])
    assert result.exit_code == 0, result.output
    found = re.search(r"submitted (\S+) to", result.output)
    assert found, result.output
    return found.group(1)


@pytest.fixture(autouse=True)
def _needs_train_verb() -> None:
    if "train" not in main.commands:
        pytest.skip("`floodlab train` is not available in this build")


def test_submitted_quickstart_succeeds_and_its_logs_and_run_are_visible(
    ray_head: str, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    job = _submit([str(QUICKSTART), *_sets([*TINY, f"logging.root={runs}"]), "--address", ray_head])
    status = wait_for_job(job, ray_head, timeout_s=240)
    logs = CliRunner().invoke(main, ["logs", job, "--address", ray_head])
    assert status == "SUCCEEDED", logs.output[-4000:]
    assert logs.exit_code == 0 and logs.output.strip()
    followed = CliRunner().invoke(main, ["logs", job, "--follow", "--address", ray_head])
    assert followed.exit_code == 0 and "Running entrypoint" in followed.output  # ends with the job
    assert (runs / "quickstart").is_dir()  # the job trained and wrote its run where asked
    listing = CliRunner().invoke(main, ["jobs", "--address", ray_head])
    assert re.search(rf"{re.escape(job)}\s+SUCCEEDED", listing.output), listing.output
    again = CliRunner().invoke(main, ["stop", job, "--address", ray_head])
    assert again.exit_code == 0 and "already finished" in again.output


def test_a_spec_outside_the_project_is_staged_and_a_job_can_be_stopped(
    ray_head: str, tmp_path: Path
) -> None:
    spec = tmp_path / "elsewhere.yaml"
    spec.write_text(QUICKSTART.read_text())
    job = _submit(
        [
            str(spec),
            *_sets(["trainer.epochs=500", f"logging.root={tmp_path / 'runs'}"]),
            "--address",
            ray_head,
        ]
    )
    assert not (ROOT / ".floodlab-submit").exists()  # the staged copy went with the upload
    stopped = CliRunner().invoke(main, ["stop", job, "--address", ray_head])
    assert stopped.exit_code == 0, stopped.output
    assert wait_for_job(job, ray_head, timeout_s=120) == "STOPPED"
    unknown = CliRunner().invoke(main, ["logs", "no-such-job", "--address", ray_head])
    assert unknown.exit_code == 2 and "no job 'no-such-job'" in unknown.output
