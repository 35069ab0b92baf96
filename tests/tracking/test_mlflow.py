"""MLflow tracking against a real local sqlite store: spec checks, runs, sinks, CLI errors.

The Ray tests at the end train one tiny run and one tiny sweep with MLflow on and read
everything back with MLflow's own client.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from floodlab.cli import main
from floodlab.errors import SpecError
from floodlab.specs import ExperimentSpec, load_spec, spec_to_dict
from floodlab.specs.tracking import MlflowSpec, check_tracking_uri
from floodlab.tracking.mlflow_runs import (
    MLFLOW_FILE,
    PARENT_TAG,
    RUN_NAME_TAG,
    MlflowSink,
    end_run,
    log_evaluation,
    open_target,
    resolve_tracking_uri,
    start_run,
    target_of,
)
from floodlab.tracking.rundir import RunDir

mlflow_tracking = pytest.importorskip("mlflow.tracking")

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite MLflow store for the module's unit tests (creating its tables costs
    seconds); each test uses its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def client(uri: str) -> Any:
    return mlflow_tracking.MlflowClient(tracking_uri=uri)


def spec_with(root: Path, uri: str, experiment: str | None = None, *extra: str) -> ExperimentSpec:
    overrides = [f"logging.root={root}", f"logging.mlflow.tracking_uri={uri}", *extra]
    if experiment is not None:
        overrides.append(f"logging.mlflow.experiment_name={experiment}")
    return load_spec(QUICKSTART, overrides)


# -- the spec field ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///mlflow.db",
        "sqlite:////abs/m.db",
        "http://host:5000",
        "postgresql+psycopg2://h/db",
    ],
)
def test_spec_accepts_tracking_uris_mlflow_serves(uri: str) -> None:
    assert MlflowSpec(tracking_uri=f"  {uri} ").tracking_uri == uri
    assert check_tracking_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("ftp://host/x", "scheme"),
        ("mlflow.db", "scheme"),
        ("sqlite://", "database file"),
        ("http:///path", "host"),
        ("http://user:hunter2@host:5000", "credential"),
        ("https://host/?token=abc", "credential"),
    ],
)
def test_spec_refuses_bad_or_secret_uris(uri: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        MlflowSpec(tracking_uri=uri)


def test_spec_default_is_off_and_open_target_does_nothing(tmp_path: Path) -> None:
    spec = load_spec(QUICKSTART, [f"logging.root={tmp_path}"])
    assert spec.logging.mlflow.tracking_uri is None
    assert open_target(spec) is None


def test_relative_local_stores_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("sqlite:///m.db") == f"sqlite:///{tmp_path / 'm.db'}"
    assert resolve_tracking_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert resolve_tracking_uri("sqlite:///:memory:") == "sqlite:///:memory:"
    assert resolve_tracking_uri("http://h:5000") == "http://h:5000"


# -- opening the store ---------------------------------------------------------------------------
def test_open_target_creates_the_experiment_once_with_artifacts_beside_the_db(
    tmp_path: Path,
) -> None:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    spec = spec_with(tmp_path, f"sqlite:///{db}")
    target = open_target(spec)
    assert target is not None
    experiment = client(target.tracking_uri).get_experiment(target.experiment_id)
    assert experiment.name == spec.name  # default: the spec's name
    assert experiment.artifact_location == (db.parent / "mlartifacts").as_uri()
    again = open_target(spec_with(tmp_path, f"sqlite:///{db}"))
    assert again == target


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///{tmp}/a-file/mlflow.db",  # its folder cannot exist: a file is in the way
        "http://127.0.0.1:9/",  # nothing listens on the discard port
    ],
)
def test_unusable_store_is_a_spec_error_naming_the_field(
    tmp_path: Path, uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    uri = uri.format(tmp=tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(SpecError) as info:
        open_target(spec_with(tmp_path, uri, "unreachable"))
    text = "\n".join(info.value.problems)
    assert "logging.mlflow.tracking_uri" in text and uri.rstrip("/") in text


def test_a_refused_file_store_says_how_to_allow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    try:  # MLflow before 3.x serves file stores without asking
        client((tmp_path / "probe").as_uri()).search_experiments()
    except Exception as e:
        assert "MLFLOW_ALLOW_FILE_STORE" in str(e)
    else:
        pytest.skip("this MLflow serves file stores without MLFLOW_ALLOW_FILE_STORE")
    with pytest.raises(SpecError, match="MLFLOW_ALLOW_FILE_STORE=true"):
        open_target(spec_with(tmp_path, (tmp_path / "mlruns").as_uri(), "file-store"))


def test_a_deleted_experiment_is_refused(tmp_path: Path, store_uri: str) -> None:
    c = client(store_uri)
    c.delete_experiment(c.create_experiment("gone"))
    with pytest.raises(SpecError, match="is deleted"):
        open_target(spec_with(tmp_path, store_uri, "gone"))


def test_cli_train_with_an_unusable_store_exits_2_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    runs = tmp_path / "runs"
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(QUICKSTART),
            "--set",
            f"logging.root={runs}",
            "--set",
            f"logging.mlflow.tracking_uri=sqlite:///{tmp_path / 'a-file' / 'm.db'}",
            "--set",
            f"data.store={tmp_path / 'never-made.zarr'}",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "logging.mlflow.tracking_uri" in result.output
    assert "Traceback" not in result.output
    assert not runs.exists() and not (tmp_path / "never-made.zarr").exists()


def test_train_and_run_sweep_check_the_store_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from floodlab.train.driver import train
    from floodlab.tune import run_sweep

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = "http://127.0.0.1:9/"  # nothing listens on the discard port
    store, root = tmp_path / "never-made.zarr", tmp_path / "runs"
    with pytest.raises(SpecError, match=r"logging\.mlflow\.tracking_uri"):
        train(spec_with(root, uri, "early", f"data.store={store}"))
    sweep = load_spec(
        ROOT / "experiments" / "sweep_flora.yaml",
        [f"logging.root={root}", f"logging.mlflow.tracking_uri={uri}", f"data.store={store}"],
    )
    with pytest.raises(SpecError, match=r"logging\.mlflow\.tracking_uri"):
        run_sweep(sweep)
    assert not root.exists() and not store.exists()


def test_cli_refuses_a_credential_in_the_uri(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(QUICKSTART),
            "--set",
            f"logging.root={tmp_path}",
            "--set",
            "logging.mlflow.tracking_uri=http://me:hunter2@host:5000",
        ],
    )
    assert result.exit_code == 2 and "credential" in result.output
    assert "hunter2" not in result.output  # the secret is never echoed back


# -- runs and sinks without Ray ------------------------------------------------------------------
def _run_dir(tmp_path: Path, spec: ExperimentSpec) -> RunDir:
    return RunDir.create(tmp_path / "runs", spec.name, spec=spec)


def test_start_run_logs_params_and_records_the_run_in_the_folder(
    tmp_path: Path, store_uri: str
) -> None:
    spec = spec_with(tmp_path, store_uri, "unit-params")
    target = open_target(spec)
    assert target is not None
    run = _run_dir(tmp_path, spec)
    sink = start_run(
        target,
        run.path,
        name="exp/run1",
        params={**spec_to_dict(spec), "spec_hash": "abc123"},
        tags={"floodlab.kind": "run"},
    )
    recorded = json.loads((run.path / MLFLOW_FILE).read_text())
    assert recorded == {
        "tracking_uri": store_uri,
        "experiment_id": target.experiment_id,
        "run_id": sink.run_id,
    }
    assert target_of(run.path) == target
    data = client(store_uri).get_run(sink.run_id)
    assert data.info.status == "RUNNING" and data.info.experiment_id == target.experiment_id
    params = data.data.params
    assert params["spec_hash"] == "abc123"
    assert params["optim.lr"] == str(spec.optim.lr)
    assert params["trainer.epochs"] == str(spec.trainer.epochs)
    assert params["logging.mlflow.tracking_uri"] == store_uri
    assert len(params) > 100  # more than one log_batch of params
    assert data.data.tags[RUN_NAME_TAG] == "exp/run1"
    assert data.data.tags["floodlab.kind"] == "run"
    assert data.data.tags["floodlab.folder"] == str(run.path)

    # A second start on the same folder (--resume) continues the same MLflow run.
    sink.end("FAILED")
    again = start_run(target, run.path, name="exp/run1", params={"spec_hash": "abc123", "new": 1})
    assert again.run_id == sink.run_id
    data = client(store_uri).get_run(sink.run_id)
    assert data.info.status == "RUNNING" and data.data.params["new"] == "1"


def test_sink_logs_epoch_metrics_artefacts_and_ends_finished(
    tmp_path: Path, store_uri: str
) -> None:
    spec = spec_with(tmp_path, store_uri, "unit-metrics")
    target = open_target(spec)
    assert target is not None
    run = _run_dir(tmp_path, spec)
    start_run(target, run.path, name="r", params={"a": 1})
    sink = MlflowSink.of(run.path)  # what rank 0 does
    assert sink is not None
    records = [
        {
            "epoch": 1,
            "train/loss": 0.9,
            "val/loss": 1.0,
            "val/iou": 0.2,
            "timestamp": 1_700_000_000.0,
        },
        {"epoch": 2, "train/loss": 0.5, "val/loss": float("nan"), "val/iou": 0.4, "flag": True},
    ]
    for r in records:
        run.append_metrics(r)
        assert sink.log_metrics(r, step=int(r["epoch"]))
    run.write_summary({"status": "finished"})
    from floodlab.tracking.curves import plot_curves

    plot_curves(run.read_metrics(), run.curves_path)
    end_run(sink, run, "FINISHED")
    assert not sink.failed

    c = client(store_uri)
    data = c.get_run(sink.run_id)
    assert data.info.status == "FINISHED"
    history = {m.step: m.value for m in c.get_metric_history(sink.run_id, "train/loss")}
    assert history == {1: 0.9, 2: 0.5}
    assert [m.step for m in c.get_metric_history(sink.run_id, "val/loss")] == [1]  # NaN left out
    stamps = [m.timestamp for m in c.get_metric_history(sink.run_id, "val/iou")]
    assert stamps[0] == 1_700_000_000_000  # the record's own time, in ms
    assert "flag" not in data.data.metrics  # booleans are not metrics
    assert {a.path for a in c.list_artifacts(sink.run_id)} >= {"summary.json", "curves.png"}

    # floodlab evaluate's reports go under eval/<name>/ of the same run.
    reports = run.path / "eval" / "test"
    reports.mkdir(parents=True)
    (reports / "report.json").write_text("{}")
    log_evaluation(run.path, reports)
    assert [a.path for a in c.list_artifacts(sink.run_id, "eval/test")] == ["eval/test/report.json"]


def test_child_runs_carry_the_parent_tag(tmp_path: Path, store_uri: str) -> None:
    spec = spec_with(tmp_path, store_uri, "unit-parent")
    target = open_target(spec)
    assert target is not None
    (tmp_path / "sweep").mkdir()
    parent = start_run(target, tmp_path / "sweep", name="sweep", params={"x": 1})
    children = []
    for i in range(2):
        folder = tmp_path / f"trial{i}"
        folder.mkdir()
        children.append(
            start_run(target, folder, name=f"t{i}", params={"lr": i}, parent_run_id=parent.run_id)
        )
    c = client(store_uri)
    found = c.search_runs(
        [target.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.run_id}'"
    )
    assert {r.info.run_id for r in found} == {ch.run_id for ch in children}
    assert PARENT_TAG not in c.get_run(parent.run_id).data.tags


def test_a_failing_sink_warns_once_and_never_raises(
    tmp_path: Path, store_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    sink = MlflowSink(store_uri, "0" * 32)  # no such run
    with caplog.at_level(logging.WARNING, logger="floodlab.tracking.mlflow_runs"):
        assert sink.log_metrics({"val/iou": 0.5}, step=1) is False
        assert sink.log_metrics({"val/iou": 0.6}, step=2) is False
        assert sink.end("FINISHED") is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "goes on without MLflow" in warnings[0].getMessage()
    assert sink.failed
    # Missing files are skipped without touching the store.
    ok = MlflowSink(store_uri, "0" * 32)
    assert ok.log_artifact(tmp_path / "missing.png") is False and not ok.failed


def test_a_worker_without_mlflow_installed_only_loses_its_mlflow_logging(
    tmp_path: Path,
    store_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import sys

    for name in ("mlflow", "mlflow.entities", "mlflow.tracking"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` raises ImportError
    sink = MlflowSink(store_uri, "0" * 32)
    with caplog.at_level(logging.WARNING, logger="floodlab.tracking.mlflow_runs"):
        assert sink.log_metrics({"epoch": 1, "val/iou": 0.5}, step=1) is False
        assert sink.set_tags({"a": "b"}) is False
        assert sink.end() is False
    assert sink.failed and "not installed" in caplog.text


def test_folders_without_mlflow_have_no_sink(tmp_path: Path) -> None:
    assert MlflowSink.of(tmp_path) is None and target_of(tmp_path) is None
    log_evaluation(tmp_path, tmp_path)  # nothing to log into, nothing raised


def test_inf_metrics_do_not_disable_the_sink(tmp_path: Path, store_uri: str) -> None:
    spec = spec_with(tmp_path, store_uri, "unit-inf")
    target = open_target(spec)
    assert target is not None
    sink = start_run(target, tmp_path, name="inf", params={})
    assert sink.log_metrics({"val/psnr": math.inf, "val/iou": 0.3}, step=1)
    assert sink.log_metrics({"val/iou": 0.4}, step=2)
    assert [m.value for m in client(store_uri).get_metric_history(sink.run_id, "val/iou")] == [
        0.3,
        0.4,
    ]


# -- end to end on Ray -------------------------------------------------------------------------
# The smallest settings of tests/train/test_ray_train.py and tests/tune (seconds per epoch).
TINY_TRAIN = [
    "data.patch_size=32",
    "model.widths=[8,16,32]",
    "model.fusion.window=2",
    "trainer.batch_size=4",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.num_workers=1",
    "trainer.epochs=2",
    "logging.image_every=0",
]
TINY_SWEEP = [
    "data.synthetic=null",
    "data.patch_size=32",
    "data.augment={flips: false, rot90: false}",
    "model.widths=[8, 16]",
    "model.fusion={window: 2, heads: 1, scales: 2}",
    "trainer.epochs=2",
    "trainer.batch_size=4",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.keep_checkpoints=1",
    "trainer.num_workers=1",
    "trainer.cpus_per_worker=1",
    "logging.image_every=0",
    "tune.max_concurrent=2",
    "tune.num_trials=2",
    "tune.evaluate_defaults=false",
    "tune.scheduler={kind: fifo}",
    "tune.space={loss.seg.dice: {type: float, low: 0.2, high: 2.0}, "
    "loss.rec.ssim: {type: float, low: 0.0, high: 1.0}}",
]


@pytest.mark.ray
def test_a_training_run_is_an_mlflow_run(
    ray_session: object, tiny_s1f11_store: Path, tmp_path: Path
) -> None:
    from floodlab.specs import spec_hash
    from floodlab.train.driver import train

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = load_spec(
        QUICKSTART,
        [
            f"data.store={tiny_s1f11_store}",
            f"logging.root={tmp_path / 'runs'}",
            f"logging.mlflow.tracking_uri={uri}",
            *TINY_TRAIN,
        ],
    )
    result = train(spec)
    sink = MlflowSink.of(result.run.path)
    assert sink is not None and sink.tracking_uri == uri

    c = client(uri)
    run = c.get_run(sink.run_id)
    assert run.info.status == "FINISHED"
    assert c.get_experiment(run.info.experiment_id).name == spec.name
    params = run.data.params
    assert params["spec_hash"] == spec_hash(spec)
    assert params["trainer.epochs"] == "2" and params["data.patch_size"] == "32"
    assert run.data.tags["floodlab.spec_hash"] == spec_hash(spec)
    assert run.data.tags[RUN_NAME_TAG] == f"{result.run.experiment}/{result.run.name}"
    records = result.run.read_metrics()
    for key in ("train/loss", "val/loss", "val/iou"):
        history = c.get_metric_history(sink.run_id, key)
        assert [m.step for m in history] == [1, 2], key
        assert [m.value for m in history] == pytest.approx([r[key] for r in records]), key
    artefacts = {a.path for a in c.list_artifacts(sink.run_id)}
    assert {"spec.yaml", "summary.json", "curves.png"} <= artefacts
    assert result.run.curves_path.is_file()


@pytest.mark.ray
def test_a_sweep_is_a_parent_run_with_one_child_per_trial(
    ray_session: object, tiny_s1f11_store: Path, tmp_path: Path
) -> None:
    from floodlab.tune import run_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = load_spec(
        ROOT / "experiments" / "sweep_flora.yaml",
        [
            f"data.store={tiny_s1f11_store}",
            f"logging.root={tmp_path / 'runs'}",
            f"logging.mlflow.tracking_uri={uri}",
            *TINY_SWEEP,
        ],
    )
    result = run_sweep(spec)
    assert len(result.records) == 2
    parent = MlflowSink.of(result.sweep_dir)
    assert parent is not None

    c = client(uri)
    top = c.get_run(parent.run_id)
    assert top.info.status == "FINISHED"
    assert top.data.tags["floodlab.kind"] == "sweep"
    assert PARENT_TAG not in top.data.tags
    assert {"spec.yaml", "trials.csv"} <= {a.path for a in c.list_artifacts(parent.run_id)}
    children = c.search_runs(
        [top.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.run_id}'"
    )
    by_trial = {r.data.tags["floodlab.trial_id"]: r for r in children}
    assert set(by_trial) == {r.trial_id for r in result.records}
    for record in result.records:
        child = by_trial[record.trial_id]
        assert child.info.status == "FINISHED", record
        assert float(child.data.params["loss.seg.dice"]) == pytest.approx(
            record.params["loss.seg.dice"]
        )
        steps = [m.step for m in c.get_metric_history(child.info.run_id, "val/iou")]
        assert steps == [1, 2]
        assert "curves.png" in {a.path for a in c.list_artifacts(child.info.run_id)}
