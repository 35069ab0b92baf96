"""Ray Train end to end on the quickstart spec: DDP shards, checkpoints, TensorBoard, faults, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from floodlab.cli import main
from floodlab.predict.restore import load_trained
from floodlab.specs import dump_spec, load_spec
from floodlab.tracking import RunDir, list_runs
from floodlab.tracking.checkpoint import load_checkpoint
from floodlab.train.driver import train

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"

pytestmark = pytest.mark.ray


def tiny_overrides(store: Path, root: Path, *extra: str) -> list[str]:
    """The quickstart, shrunk to seconds per epoch on CPU."""
    return [
        f"data.store={store}",
        f"logging.root={root}",
        "data.patch_size=32",
        "model.widths=[8,16,32]",
        "model.fusion.window=2",
        "trainer.batch_size=4",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "logging.num_images=2",
        "logging.image_every=1",
        "logging.log_every_n_steps=1",
        *extra,
    ]


@pytest.fixture(scope="module")
def two_worker_run(ray_session, tiny_s1f11_store, tmp_path_factory) -> RunDir:
    """The quickstart for 2 epochs on 2 DDP workers."""
    root = tmp_path_factory.mktemp("runs")
    spec = load_spec(
        QUICKSTART,
        tiny_overrides(tiny_s1f11_store, root, "trainer.epochs=2", "trainer.num_workers=2"),
    )
    seen: list[int] = []
    result = train(spec, progress=lambda record: seen.append(record["epoch"]))
    assert seen == [1, 2]  # progress followed the records as they were written
    assert result.metrics["epoch"] == 2
    return result.run


def test_both_ranks_trained_on_disjoint_shards(two_worker_run):
    ranks = [json.loads((two_worker_run.workers_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["pid"] != ranks[1]["pid"]
    shard0, shard1 = (set(r["train_indices"]) for r in ranks)
    assert shard0 and shard1 and not shard0 & shard1
    assert len(shard0) == len(shard1)


def test_run_directory_holds_metrics_checkpoints_and_summary(two_worker_run):
    records = two_worker_run.read_metrics()
    assert [r["epoch"] for r in records] == [1, 2]
    for key in (
        "train/loss",
        "train/loss/dice",
        "val/loss",
        "val/iou",
        "val/with_optical/iou",
        "lr",
        "time",
    ):
        assert key in records[-1], key
    summary = two_worker_run.read_summary()
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    assert summary["spec_hash"] == two_worker_run.spec_hash()
    state = load_checkpoint(two_worker_run.latest_checkpoint())
    assert state["loop"]["epoch"] == 2 and state["spec_hash"] == two_worker_run.spec_hash()
    assert Path(summary["best"]["checkpoint"]) == two_worker_run.best_checkpoint()
    assert json.loads(two_worker_run.normalization_path.read_text())


def test_curves_png_shows_the_whole_run_when_it_ends(two_worker_run, tmp_path):
    """Drawn in the background while training, complete (every epoch) once the run ends."""
    from floodlab.tracking.curves import plot_curves

    expected = tmp_path / "expected.png"
    plot_curves(two_worker_run.read_metrics(), expected, title=two_worker_run.name)
    assert two_worker_run.curves_path.read_bytes() == expected.read_bytes()


def test_tensorboard_events_parse_with_expected_tags(two_worker_run):
    acc = EventAccumulator(str(two_worker_run.tensorboard_dir), size_guidance={"images": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {
        "train/loss",
        "train/loss/dice",
        "train/loss/bce",
        "val/iou",
        "val/loss",
        "lr",
    } <= scalars
    assert "train_step/loss" in scalars
    assert any(tag.startswith("panels/") for tag in acc.Tags()["images"])
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")


def test_load_trained_gives_an_eval_mode_cpu_task(two_worker_run):
    trained = load_trained(two_worker_run.path, checkpoint="latest")
    assert trained.epoch == 2 and not trained.task.nets.training
    assert all(p.device.type == "cpu" for p in trained.task.nets.parameters())
    assert trained.normalization == json.loads(two_worker_run.normalization_path.read_text())


def test_evaluate_writes_reports_beside_otsu(two_worker_run):
    result = CliRunner().invoke(main, ["evaluate", str(two_worker_run.path), "--split", "val"])
    assert result.exit_code == 0, result.output
    out = two_worker_run.eval_dir("val")
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["predictors"]) == {"model", "model_with_optical", "otsu", "all_water"}
    assert 0.0 <= report["predictors"]["otsu"]["iou"] <= 1.0
    assert "otsu" in result.output and "model_with_optical" in result.output
    header = (out / "per_image.csv").read_text().splitlines()[0]
    assert "iou_model" in header and "iou_otsu" in header
    assert (out / "confusion_matrix.json").is_file() and (out / "confusion_matrix.png").is_file()
    assert list(out.glob("best_1_*.png")) and list(out.glob("worst_1_*.png"))


def test_killed_worker_restarts_from_checkpoint_without_duplicate_epochs(
    ray_session, tiny_s1f11_store, tmp_path, monkeypatch
):
    # Rank 1 SIGKILLs its process right after reporting epoch 2, whose checkpoint rank 0
    # has written: whether or not Ray Train registered it before the failure, both workers
    # restart from it and run epoch 3 next.
    monkeypatch.setenv("FLOODLAB_FAULT_KILL", "1:2")
    spec = load_spec(
        QUICKSTART,
        tiny_overrides(
            tiny_s1f11_store,
            tmp_path,
            "trainer.epochs=4",
            "trainer.num_workers=2",
            "trainer.checkpoint_every=2",
            "trainer.max_failures=1",
            "trainer.ema_decay=0.9",  # the weight average survives restarts too
            "logging.image_every=0",
        ),
    )
    result = train(spec)
    run = result.run
    assert (run.workers_dir / "fault_injected").is_file()
    assert json.loads((run.workers_dir / "rank1.json").read_text())["attempt"] == 2
    assert json.loads((run.workers_dir / "rank1.json").read_text())["start_epoch"] == 3
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3, 4]
    assert run.read_summary()["status"] == "completed"
    assert load_checkpoint(run.latest_checkpoint())["loop"]["epoch"] == 4

    # --resume from the CLI continues the same run at epoch 5 with the optimiser state.
    monkeypatch.delenv("FLOODLAB_FAULT_KILL")
    before = load_checkpoint(run.latest_checkpoint())
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(dump_spec(spec))
    cli = CliRunner().invoke(
        main,
        [
            "train",
            str(spec_file),
            "--set",
            "trainer.epochs=5",
            "--workers",
            "1",
            "--resume",
            str(run.path),
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert str(run.path) in cli.output and "tensorboard --logdir" in cli.output
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3, 4, 5]
    after = load_checkpoint(run.latest_checkpoint())
    assert after["loop"]["epoch"] == 5
    trained, averaged = after["training"]["model"], after["task"]["model"]
    assert trained.keys() == averaged.keys()
    assert any(not torch.equal(trained[k], averaged[k]) for k in trained)
    assert after["loop"]["global_step"] == before["loop"]["global_step"] + 2  # 2 batches more
    step_before = before["optimizers"]["main"]["state"][0]["step"]
    assert torch.equal(after["optimizers"]["main"]["state"][0]["step"], step_before + 2)


def test_a_checkpoint_ray_never_registered_is_not_lost(
    ray_session, tiny_s1f11_store, tmp_path, monkeypatch
):
    # Rank 0 writes epoch 2's checkpoint and dies before reporting it: Ray Train never
    # registers it and restarts the workers with no checkpoint of its own. The run must
    # continue after epoch 2 all the same, without repeating an epoch.
    monkeypatch.setenv("FLOODLAB_FAULT_KILL", "0:2:before_report")
    spec = load_spec(
        QUICKSTART,
        tiny_overrides(
            tiny_s1f11_store,
            tmp_path,
            "trainer.epochs=3",
            "trainer.num_workers=2",
            "trainer.checkpoint_every=2",
            "trainer.max_failures=1",
            "logging.image_every=0",
        ),
    )
    run = train(spec).run
    assert "before_report" in (run.workers_dir / "fault_injected").read_text()
    for rank in (0, 1):
        record = json.loads((run.workers_dir / f"rank{rank}.json").read_text())
        assert (record["attempt"], record["start_epoch"]) == (2, 3), record
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3]
    assert [c["epoch"] for c in run.checkpoints()] == [2, 3]
    assert run.read_summary()["status"] == "completed"
    state = load_checkpoint(run.latest_checkpoint())
    assert state["loop"]["epoch"] == 3
    assert state["loop"]["global_step"] == 3 * 2  # 2 batches an epoch, none repeated


def test_nan_loss_on_a_worker_exits_cleanly(ray_session, tiny_s1f11_store, tmp_path):
    spec_file = tmp_path / "nan.yaml"
    spec_file.write_text(QUICKSTART.read_text())
    args = ["train", str(spec_file)]
    for o in tiny_overrides(
        tiny_s1f11_store,
        tmp_path,
        "trainer.epochs=1",
        "optim.lr=1e30",
        "trainer.grad_clip=null",
        "trainer.max_failures=0",
        "logging.image_every=0",
    ):
        args += ["--set", o]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "non-finite" in result.output and "Traceback" not in result.output
    assert "wrote no checkpoint" in result.output and "intact" not in result.output
    # The failed run is listed with its reason but does not become `latest`.
    (listed,) = list_runs(tmp_path)
    run = RunDir.open(listed, root=tmp_path)
    summary = run.read_summary()
    assert summary["status"] == "failed" and "non-finite" in summary["error"]
    assert not (tmp_path / "quickstart" / "latest").exists()


def test_data_lost_under_a_run_fails_it_without_taking_latest(
    ray_session, two_worker_run, tiny_s1f11_store, tmp_path
):
    import shutil

    # A usable run of the experiment exists; a later run loses its labels after the
    # driver's checks (as when a store is deleted or unmounted under a running job).
    root = two_worker_run.path.parents[1]
    assert RunDir.open("quickstart/latest", root=root) == two_worker_run
    store = tmp_path / "copy.zarr"
    shutil.copytree(tiny_s1f11_store, store)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(QUICKSTART.read_text())
    args = ["train", str(spec_file)]
    for o in tiny_overrides(store, root, "trainer.epochs=2", "logging.image_every=0"):
        args += ["--set", o]
    shutil.rmtree(store / "label")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert str(store) in result.output and "Traceback" not in result.output
    assert "wrote no checkpoint" in result.output
    failed = [RunDir.open(r, root=root) for r in list_runs(root)]
    failed = [r for r in failed if r.read_summary().get("status") == "failed"]
    assert len(failed) == 1 and str(store) in failed[0].read_summary()["error"]
    assert RunDir.open("quickstart/latest", root=root) == two_worker_run


def test_ensure_ray_reuses_the_running_ray(ray_session):
    from floodlab.cluster.ray_env import ensure_ray

    assert ensure_ray()["CPU"] == ray_session.cluster_resources()["CPU"]


def test_missing_store_exits_2_without_traceback(tmp_path):
    args = [
        "train",
        str(QUICKSTART),
        "--set",
        f"data.store={tmp_path / 'none.zarr'}",
        "--set",
        "data.synthetic=null",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "none.zarr" in result.output and "Traceback" not in result.output
