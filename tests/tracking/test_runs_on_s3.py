"""Runs on object storage (``logging.root: s3://...``, a real S3-protocol server on 127.0.0.1):
every run file lives at the run's URL, checkpoints go straight there, and a machine with
nothing local finds, resumes, evaluates and maps from it."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
import s3fs
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.errors import FloodlabError
from floodlab.specs import dump_spec, load_spec
from floodlab.tracking import RunDir, list_runs
from floodlab.tracking.checkpoint_dirs import CHECKPOINT_FILE, CHECKPOINT_META
from floodlab.tracking.home import working_copy

S3_BUCKET = "floodlab-test"
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"


@pytest.fixture
def root(s3_server: str) -> str:
    """A fresh runs root in the test bucket; its working copies are removed afterwards."""
    url = f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}/runs"
    yield url
    shutil.rmtree(working_copy(url), ignore_errors=True)


def _objects(url: str) -> set[str]:
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    prefix = url.removeprefix("s3://").rstrip("/") + "/"
    return {p.removeprefix(prefix) for p in fs.find(url)}


def test_a_run_folder_round_trips_through_its_url(root: str) -> None:
    run = RunDir.create(root, "exp", "r1")
    assert run.where == f"{root}/exp/r1" and run.home is not None
    run.append_metrics({"epoch": 1, "val/iou": 0.5})
    run.write_summary({"status": "running"})
    run.push()
    assert {"metrics.jsonl", "summary.json"} <= _objects(run.where)
    fs = s3fs.S3FileSystem()
    ckpts = f"{run.where}/checkpoints"
    # epoch 1 complete; epoch 2 torn (its checkpoint.pt shorter than meta.json records).
    fs.pipe(f"{ckpts}/epoch_0001/{CHECKPOINT_FILE}", b"x" * 10)
    meta = {"epoch": 1, "score": 0.5, "mode": "max", "files": {CHECKPOINT_FILE: 10}}
    fs.pipe(f"{ckpts}/epoch_0001/{CHECKPOINT_META}", json.dumps(meta).encode())
    fs.pipe(f"{ckpts}/epoch_0002/{CHECKPOINT_FILE}", b"x" * 3)
    meta2 = {**meta, "epoch": 2, "files": {CHECKPOINT_FILE: 10}}
    fs.pipe(f"{ckpts}/epoch_0002/{CHECKPOINT_META}", json.dumps(meta2).encode())
    (run.path / "spec.yaml").write_text(dump_spec(load_spec(QUICKSTART)))
    run.push()
    assert run.mark_latest()

    shutil.rmtree(working_copy(root))  # another machine: nothing local
    found = RunDir.open("exp/latest", root=root)
    assert found == run and found.read_metrics() == [{"epoch": 1, "val/iou": 0.5}]
    assert [c["epoch"] for c in found.checkpoints()] == [1]
    assert found.best_checkpoint() == f"{ckpts}/epoch_0001/{CHECKPOINT_FILE}"
    assert not (found.path / "checkpoints").exists()  # checkpoints stay at the URL
    assert list_runs(root) == ["exp/r1"]
    assert RunDir.open(run.where, root="elsewhere") == run  # the run's own URL as a reference
    with pytest.raises(FloodlabError, match=rf"not found.*available runs under {root}/: exp/r1"):
        RunDir.open("exp/nope", root=root)


@pytest.mark.ray
@pytest.mark.slow
def test_a_run_on_s3_survives_a_killed_worker_and_resumes_evaluates_and_maps_from_its_url(
    ray_session, root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.predict.test_scene_cli import write_scene

    from floodlab.train.driver import train

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    store = root.removesuffix("/runs") + "/s1f11.zarr"
    spec = load_spec(
        QUICKSTART,
        [
            f"data.store={store}",
            "data.synthetic={chips: 12, size: 64, seed: 1}",
            f"logging.root={root}",
            "data.patch_size=32",
            "model.widths=[8,16,32]",
            "model.fusion.window=2",
            "trainer.batch_size=4",
            "trainer.epochs=2",
            "trainer.num_workers=2",
            "trainer.checkpoint_every=1",
            "trainer.max_failures=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=2",
            "logging.image_every=0",
        ],
    )
    # Rank 1 SIGKILLs itself after reporting epoch 1: the workers restart from the
    # checkpoint at the run's URL and train epoch 2 only.
    monkeypatch.setenv("FLOODLAB_FAULT_KILL", "1:1")
    result = train(spec)
    monkeypatch.delenv("FLOODLAB_FAULT_KILL")
    url = result.run.where
    assert url.startswith(f"{root}/quickstart/") and str(result.best_checkpoint).startswith(url)
    objects = _objects(url)
    assert {"spec.yaml", "metrics.jsonl", "summary.json", "normalization.json", "curves.png"} <= (
        objects
    )
    assert {f"checkpoints/epoch_000{e}/{CHECKPOINT_FILE}" for e in (1, 2)} <= objects
    assert any(o.startswith("tensorboard/events.out.tfevents") for o in objects)
    assert {"workers/rank0.json", "workers/rank1.json", "workers/fault_injected"} <= objects
    assert not any(working_copy(root).rglob(CHECKPOINT_FILE))  # checkpoints only at the URL
    assert os.listdir(work) == []  # nothing local: no runs/ folder, no folder named "s3:"

    shutil.rmtree(working_copy(root))  # another machine: nothing local
    run = RunDir.open("quickstart/latest", root=root)
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]  # no lost or repeated epoch
    rank1 = json.loads((run.workers_dir / "rank1.json").read_text())
    assert (rank1["attempt"], rank1["start_epoch"]) == (2, 2)
    assert run.read_summary()["status"] == "completed"

    # --resume by URL continues the same run at epoch 3.
    shutil.rmtree(working_copy(root))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(dump_spec(spec))
    args = ["train", str(spec_file), "--set", "trainer.epochs=3", "--workers", "1"]
    res = CliRunner().invoke(main, [*args, "--resume", url])
    assert res.exit_code == 0, res.output
    assert f"run:         {url}" in res.output
    run = RunDir.open(url)
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3]
    assert f"checkpoints/epoch_0003/{CHECKPOINT_FILE}" in _objects(url)

    # evaluate and predict by reference under the root: reports go to the run's URL.
    shutil.rmtree(working_copy(root))
    res = CliRunner().invoke(main, ["evaluate", "quickstart/latest", "--root", root])
    assert res.exit_code == 0, res.output
    report = json.loads(s3fs.S3FileSystem().cat(f"{url}/eval/test/metrics.json"))
    assert report["run"] == url and report["checkpoint"].startswith(url) and report["images"] > 0
    scene = write_scene(tmp_path / "scene.tif", height=70, width=80)
    out = tmp_path / "flood.tif"
    args = ["predict", "quickstart/latest", str(scene), "-o", str(out), "--root", root]
    res = CliRunner().invoke(main, [*args, "--window", "32", "--overlap", "8"])
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as dst:
        prob = dst.read(1)
    assert np.isfinite(prob).all() and prob.shape == (70, 80)
    assert os.listdir(work) == []
