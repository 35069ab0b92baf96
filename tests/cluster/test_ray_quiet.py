"""A local Ray started by floodlab keeps Ray's notices off the terminal unless verbose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

START = """
import sys
from floodlab.cli.output import configure_output
configure_output(sys.argv[1] == "verbose")
import ray
from floodlab.cluster.ray_env import start_local_ray
start_local_ray(num_cpus=1)
ray.shutdown()
"""
NOTICE = "Token authentication is enabled for this Ray cluster"


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_rays_token_notice_shows_only_when_verbose(mode: str, tmp_path: Path) -> None:
    # A new local Ray with RAY_AUTH_MODE unset turns token authentication on and says so;
    # its token goes to this test's home, not the user's.
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", START, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout + done.stderr
    assert (NOTICE in printed) == (mode == "verbose"), printed[-3000:]
