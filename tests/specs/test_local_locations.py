"""Object-storage URIs are refused where floodlab needs a file system, never turned into a
local folder named ``s3:``: the spec (stores, run roots) and every CLI path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.errors import SpecError
from floodlab.specs import load_spec

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"
URIS = ["s3://bucket/floodlab/x", "gs://bucket/x", "file:///tmp/x", "abfs://c@acct/x"]


@pytest.mark.parametrize("field", ["logging.root", "data.store"])
@pytest.mark.parametrize("uri", URIS)
def test_spec_refuses_a_uri_naming_the_field_and_the_fix(field: str, uri: str) -> None:
    with pytest.raises(SpecError) as err:
        load_spec(QUICKSTART, [f"{field}={uri}"])
    (problem,) = err.value.problems
    assert problem.startswith(f"{QUICKSTART}: {field}: a URI, not a file system path")
    assert uri in problem
    assert "every node mounts at the same path" in problem


def test_spec_keeps_file_system_paths() -> None:
    spec = load_spec(QUICKSTART, ["logging.root=/shared/runs", "data.store=rel/s3:x.zarr"])
    assert spec.logging.root == "/shared/runs" and spec.data.store == "rel/s3:x.zarr"


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "sen1floods11", "{src}", "--out", "s3://bucket/x.zarr"],
        ["convert", "sen1floods11", "s3://bucket/raw", "--out", "{tmp}/x.zarr"],
        ["synth", "sen1floods11", "--out", "s3://bucket/raw"],
        ["inspect", "s3://bucket/x.zarr"],
        ["evaluate", "{tmp}/run", "--store", "gs://bucket/x.zarr"],
        ["predict", "{tmp}/run", "{tmp}/scene.tif", "-o", "s3://bucket/map.tif"],
        ["export", "{tmp}/run", "-o", "s3://bucket/model.onnx"],
    ],
)
def test_cli_refuses_uris_with_exit_2_and_writes_nothing(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = [a.format(src=tmp_path, tmp=tmp_path) for a in args]
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert "is a URI" in res.output and "mounts at the same path" in res.output
    assert os.listdir(work) == []  # no local folder named "s3:" or "gs:"
