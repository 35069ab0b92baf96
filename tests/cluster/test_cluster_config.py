"""Cluster configs validate against Ray's schema; submission builds safe, refusable jobs."""

from __future__ import annotations

import copy
import json
import shlex
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.cluster.config import (
    entrypoint,
    find_project_root,
    is_uploaded,
    resolve_address,
    runtime_env,
)
from floodlab.errors import ClusterError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["ray_cluster.yaml", "ray_cluster.local.yaml"])
def test_cluster_configs_pass_rays_own_schema_and_checks(name: str) -> None:
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / name).read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)  # the file as written
    validate_config(prepare_config(copy.deepcopy(config)))  # as `ray up` would fill it in
    # The dashboard (and Jobs API) must stay on loopback; users reach it via `ray dashboard`.
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start


def test_the_gpu_cluster_autoscales_gpu_workers_and_installs_torch_first() -> None:
    config = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    workers = {
        k: v for k, v in config["available_node_types"].items() if k != config["head_node_type"]
    }
    assert any(v["node_config"]["InstanceType"].startswith("g5") for v in workers.values())
    assert all(v["min_workers"] < v["max_workers"] for v in workers.values())
    setup = config["setup_commands"]
    assert "torch==" in setup[0] and "~/floodlab" in setup[-1]
    assert "~/floodlab" in config["file_mounts"] and ".venv" in config["rsync_exclude"]


def test_addresses_default_to_loopback_and_refuse_wildcards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) == "http://127.0.0.1:8265"
    assert resolve_address("10.1.2.3:8265") == "http://10.1.2.3:8265"
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265/")
    assert resolve_address(None) == "http://head:8265"
    for bad in ("0.0.0.0:8265", "ray://head:10001"):
        with pytest.raises(ClusterError, match="8265"):
            resolve_address(bad)


def test_entrypoint_quotes_every_argument() -> None:
    evil = "name=x; rm -rf ~ $(reboot)"
    cmd = entrypoint("train", "experiments/my spec.yaml", ["trainer.epochs=1", evil])
    assert shlex.split(cmd) == [
        "python", "-m", "floodlab.cli", "train", "experiments/my spec.yaml",
        "--set", "trainer.epochs=1", "--set", evil,
    ]  # fmt: skip


def test_runtime_env_uploads_the_project_without_heavy_folders() -> None:
    from pathspec import PathSpec

    env = runtime_env(find_project_root(ROOT / "experiments"))
    assert Path(env["working_dir"]) == ROOT
    assert "pip" not in env and "conda" not in env  # nodes already have the dependencies
    # Matched the way Ray matches them, relative to the working dir.
    excluded = PathSpec.from_lines("gitwildmatch", env["excludes"]).match_file
    for heavy in (".venv/bin/python", "runs/quickstart/x/checkpoint.pt", "data/s.zarr/zarr.json",
                  ".git/HEAD", "experiments/store.zarr/c/0"):  # fmt: skip
        assert excluded(heavy), heavy
    for needed in ("experiments/quickstart.yaml", "platform/floodlab/data/derive.py",
                   "platform/floodlab/cli.py", "pyproject.toml"):  # fmt: skip
        assert not excluded(needed), needed
    root = find_project_root(ROOT)
    assert is_uploaded(root, ROOT / "experiments" / "quickstart.yaml")
    assert not is_uploaded(root, ROOT / "runs" / "quickstart" / "r1" / "spec.yaml")  # staged
    assert not is_uploaded(root, Path("/elsewhere/spec.yaml"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_submit_to_an_unreachable_cluster_says_how_to_start_one() -> None:
    address = f"http://127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(
        main, ["submit", str(ROOT / "experiments" / "quickstart.yaml"), "--address", address]
    )
    assert result.exit_code == 2
    assert address in result.output and "ray start --head" in result.output
    assert "ray up ray_cluster.yaml" in result.output and "Traceback" not in result.output


def test_an_invalid_spec_is_refused_before_contacting_the_cluster(tmp_path: Path) -> None:
    # The address is unreachable: a spec error (not a cluster error) proves nothing was sent.
    address = f"http://127.0.0.1:{_free_port()}"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "experiments" / "quickstart.yaml").read_text().replace("epochs: 6", "epochs: -1")
    )
    result = CliRunner().invoke(main, ["submit", str(bad), "--address", address])
    assert result.exit_code == 2
    assert "trainer.epochs" in result.output and "ray start" not in result.output
    result = CliRunner().invoke(
        main,
        ["submit", str(ROOT / "experiments" / "quickstart.yaml"), "--tune", "--address", address],
    )
    assert result.exit_code == 2 and "tune" in result.output and "ray start" not in result.output
    assert not (ROOT / ".floodlab-submit").exists()


@pytest.mark.parametrize("verb", [["jobs"], ["logs", "some-job"], ["stop", "some-job"]])
def test_job_verbs_on_an_unreachable_cluster_exit_2(verb: list[str]) -> None:
    address = f"127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(main, [*verb, "--address", address])
    assert result.exit_code == 2 and f"http://{address}" in result.output
