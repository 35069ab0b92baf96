"""Object-storage URIs are refused where floodlab needs a file system, never turned into a
local folder named ``s3:``: every CLI path but a store's or a run's. Stores and run roots
take URLs that fsspec can open, and nothing else (tests/data/test_object_storage.py and
tests/tracking/test_runs_on_s3.py use them)."""

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


def test_spec_keeps_file_system_paths() -> None:
    spec = load_spec(QUICKSTART, ["logging.root=/shared/runs", "data.store=rel/s3:x.zarr"])
    assert spec.logging.root == "/shared/runs" and spec.data.store == "rel/s3:x.zarr"


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "sen1floods11", "s3://bucket/raw", "--out", "{tmp}/x.zarr"],
        ["synth", "sen1floods11", "--out", "s3://bucket/raw"],
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


def test_a_store_and_a_runs_root_may_be_urls_fsspec_opens() -> None:
    spec = load_spec(QUICKSTART, ["data.store=s3://bucket/floodlab/x.zarr"])
    assert spec.data.store_path == "s3://bucket/floodlab/x.zarr"
    spec = load_spec(QUICKSTART, ["logging.root=s3://bucket/floodlab/runs"])
    assert spec.logging.root == "s3://bucket/floodlab/runs"
    assert (
        load_spec(QUICKSTART, ["data.store=file:///srv/x.zarr"]).data.store == "file:///srv/x.zarr"
    )


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("nosuch://bucket/x.zarr", "fsspec does not know"),
        ("s3://AKIA123:secret@bucket/x.zarr", "holds credentials"),
    ],
)
@pytest.mark.parametrize("field", ["data.store", "logging.root"])
def test_a_location_url_that_cannot_work_is_refused(uri: str, says: str, field: str) -> None:
    with pytest.raises(SpecError) as err:
        load_spec(QUICKSTART, [f"{field}={uri}"])
    (problem,) = err.value.problems
    assert field in problem and says in problem
    assert "AKIA123" not in problem and ":secret@" not in problem


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "sen1floods11", "{src}", "--out", "nosuch://bucket/x.zarr"],
        ["inspect", "nosuch://bucket/x.zarr"],
        ["evaluate", "{tmp}/run", "--store", "nosuch://bucket/x.zarr"],
    ],
)
def test_cli_store_locations_refuse_unknown_protocols(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    res = CliRunner().invoke(main, [a.format(src=tmp_path, tmp=tmp_path) for a in args])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "fsspec does not know" in res.output
    assert os.listdir(work) == []
