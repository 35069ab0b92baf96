"""MLflow tracking beside TensorBoard: one MLflow run per run directory (or sweep directory).

Whoever drives a run (the `floodlab train` driver, a sweep's trial, the sweep itself)
opens the store first (`open_target`: a bad URI, an unreachable server or a missing MLflow
install is a clear error before any training), then creates the MLflow run with
`start_run`, which records it in the folder's ``mlflow.json``. Rank 0 finds it there and
logs every epoch record; `floodlab evaluate` logs its reports into the same run. Nothing
else is needed to follow a run: the file holds the tracking URI (never a credential: the
spec refuses URIs that hold one) and the run id.

Once a run is under way, MLflow must never stop it: every call goes through `MlflowSink`,
which logs the first failure as one warning and then stops logging to MLflow for that run
(metrics.jsonl and TensorBoard keep everything). mlflow is imported only when a spec sets
``logging.mlflow.tracking_uri``; it is the optional extra ``floodlab[mlflow]``.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from floodlab.errors import FloodlabError, SpecError
from floodlab.io import read_json_object, write_json

if TYPE_CHECKING:
    from floodlab.specs import ExperimentSpec
    from floodlab.tracking.rundir import RunDir

log = logging.getLogger(__name__)

MLFLOW_FILE = "mlflow.json"
FIELD = "logging.mlflow.tracking_uri"
# MLflow's own limits of one log_batch call and of a param value.
_MAX_PARAMS, _MAX_METRICS, _MAX_VALUE = 100, 1000, 6000
# A tracking server that does not answer should cost seconds, not MLflow's default of
# minutes of retries (each overridable through the environment).
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
# Tags MLflow shows in its UI.
RUN_NAME_TAG, PARENT_TAG = "mlflow.runName", "mlflow.parentRunId"


@dataclass(frozen=True)
class MlflowTarget:
    """An opened MLflow store and the experiment runs go to."""

    tracking_uri: str
    experiment_id: str


def _client(tracking_uri: str) -> Any:
    """An `MlflowClient` of `tracking_uri` (raises FloodlabError when mlflow is missing)."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise FloodlabError(
            f"{FIELD}: MLflow tracking is on, but MLflow is not installed; install it with "
            "`pip install 'floodlab[mlflow]'`, or remove the field to train without MLflow"
        ) from None
    if urlsplit(tracking_uri).scheme in ("http", "https"):
        for name, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
    return MlflowClient(tracking_uri=tracking_uri)


def resolve_tracking_uri(uri: str) -> str:
    """`uri` with a local store's relative path made absolute (relative to this process).

    Ray's workers and sweep trials run elsewhere; they must reach the same database.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "sqlite" and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri.removeprefix("sqlite:///")
        if path and path != ":memory:":
            return f"sqlite:///{Path(path).absolute()}"
    if scheme == "file" and parts.path and not parts.netloc and not parts.path.startswith("/"):
        return Path(parts.path).absolute().as_uri()
    return uri


def _default_artifact_location(tracking_uri: str) -> str | None:
    """A sqlite store keeps new experiments' artefacts beside its database file."""
    if tracking_uri.startswith("sqlite:////"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


def open_target(spec: ExperimentSpec) -> MlflowTarget | None:
    """Open the spec's MLflow store and its experiment (created if new); None when off.

    Called by the driver before anything trains, so that a wrong URI stops the command;
    a second call with the same settings in the same process reuses the first's answer.

    Raises:
        SpecError: the store cannot be opened or reached, or the experiment not created.
        FloodlabError: MLflow is not installed.
    """
    m = spec.logging.mlflow
    if m.tracking_uri is None:
        return None
    return _open(
        resolve_tracking_uri(m.tracking_uri), m.experiment_name or spec.name, m.artifact_location
    )


@functools.lru_cache(maxsize=8)
def _open(uri: str, name: str, artifact_location: str | None) -> MlflowTarget:
    """The experiment `name` of the store `uri`, created (with `artifact_location`) if new."""
    try:
        # Inside the try: MLflow opens (and may fail to create) a database store right here.
        client = _client(uri)
        found = client.get_experiment_by_name(name)
        if found is None:
            location = artifact_location or _default_artifact_location(uri)
            try:
                experiment_id = client.create_experiment(name, artifact_location=location)
            except Exception:  # created meanwhile by a concurrent run
                found = client.get_experiment_by_name(name)
                if found is None:
                    raise
                experiment_id = found.experiment_id
        elif found.lifecycle_stage == "deleted":
            raise SpecError(
                [
                    f"{FIELD}: MLflow experiment {name!r} at {uri} is deleted; restore it "
                    "(`mlflow experiments restore`) or set logging.mlflow.experiment_name to "
                    "another name"
                ]
            )
        else:
            experiment_id = found.experiment_id
    except FloodlabError:  # SpecError above, or MLflow not installed
        raise
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:300]
        if "MLFLOW_ALLOW_FILE_STORE" in str(e):  # MLflow 3 refuses file stores by default
            first = (
                "MLflow refuses a file store unless MLFLOW_ALLOW_FILE_STORE=true is set; "
                "a sqlite store needs no setting"
            )
        raise SpecError(
            [
                f"{FIELD}: cannot use the MLflow store at {uri} ({type(e).__name__}: {first}); "
                "check the URI (sqlite:///path/mlflow.db for a local store, http://HOST:5000 "
                "for a running tracking server), or remove the field to train without MLflow"
            ]
        ) from None
    return MlflowTarget(uri, str(experiment_id))


def flatten_params(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested spec data as MLflow params: dotted path -> value as text (lists as YAML-ish)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten_params(value, path + "."))
        else:
            text = "None" if value is None else str(value)
            out[path] = text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."
    return out


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def start_run(
    target: MlflowTarget,
    folder: Path,
    *,
    name: str,
    params: dict[str, Any],
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> MlflowSink:
    """The MLflow run of `folder` (a run or sweep directory), created or continued.

    A folder that already has an MLflow run in this store (``--resume``, a resumed sweep)
    continues it: it is marked running again and gets the params it lacks (MLflow keeps
    params immutable; a changed spec shows in the ``floodlab.spec_hash`` tag). Otherwise a
    new run is created and recorded in ``<folder>/mlflow.json``.

    Raises:
        SpecError: the store refuses the run (before training starts).
    """
    from mlflow.entities import Param, RunTag

    all_tags = {RUN_NAME_TAG: name, "floodlab.folder": str(folder), **(tags or {})}
    if parent_run_id is not None:
        all_tags[PARENT_TAG] = parent_run_id
    recorded = read_json_object(folder / MLFLOW_FILE)
    try:
        client = _client(target.tracking_uri)
        run_id: str | None = None
        existing: dict[str, str] = {}
        if recorded.get("tracking_uri") == target.tracking_uri and recorded.get("run_id"):
            try:
                run = client.get_run(recorded["run_id"])
                run_id, existing = run.info.run_id, dict(run.data.params)
                client.update_run(run_id, status="RUNNING")
            except Exception:  # deleted from the store meanwhile: start a new one
                run_id = None
        if run_id is None:
            run_id = client.create_run(target.experiment_id, tags=all_tags).info.run_id
        else:
            client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in all_tags.items()])
        text = {k: v for k, v in flatten_params(params).items() if k not in existing}
        for chunk in _chunks([Param(k, v) for k, v in text.items()], _MAX_PARAMS):
            client.log_batch(run_id, params=chunk)
    except FloodlabError:  # MLflow not installed
        raise
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise SpecError(
            [
                f"{FIELD}: the MLflow store at {target.tracking_uri} refused a new run "
                f"({type(e).__name__}: {first}); check the store, or remove the field to "
                "train without MLflow"
            ]
        ) from None
    write_json(
        folder / MLFLOW_FILE,
        {
            "tracking_uri": target.tracking_uri,
            "experiment_id": target.experiment_id,
            "run_id": run_id,
        },
    )
    return MlflowSink(target.tracking_uri, run_id, client=client)


def start_spec_run(
    target: MlflowTarget, folder: Any, spec: ExperimentSpec, kind: str
) -> MlflowSink:
    """`start_run` for a run or sweep directory (`RunDir`, `SweepDir`) of `spec`: named
    ``<experiment>/<name>``, the spec's dotted paths and hash as params, tagged with `kind`
    ("run" or "sweep") and the hash, the resolved spec logged as an artefact."""
    from floodlab.specs import spec_hash, spec_to_dict

    digest = spec_hash(spec)
    sink = start_run(
        target,
        folder.path,
        name=f"{folder.experiment}/{folder.name}",
        params={**spec_to_dict(spec), "spec_hash": digest},
        tags={"floodlab.kind": kind, "floodlab.spec_hash": digest},
    )
    sink.log_artifact(folder.spec_path)
    return sink


class MlflowSink:
    """Logs into one MLflow run and never raises: the first failure is one warning, after
    which the sink stops logging (the run goes on; its folder keeps every record).

    Args:
        tracking_uri: the store.
        run_id: the MLflow run.
        client: an open `MlflowClient` of that store (default: opened on first use).
    """

    def __init__(self, tracking_uri: str, run_id: str, *, client: Any = None):
        self.tracking_uri, self.run_id = tracking_uri, run_id
        self._client = client
        self.failed = False

    @classmethod
    def of(cls, folder: str | Path) -> MlflowSink | None:
        """The sink of the MLflow run recorded in `folder` (None when it has none)."""
        recorded = read_json_object(Path(folder) / MLFLOW_FILE)
        if not recorded.get("run_id") or not recorded.get("tracking_uri"):
            return None
        return cls(str(recorded["tracking_uri"]), str(recorded["run_id"]))

    def _call(self, what: str, fn: Callable[[Any], None]) -> bool:
        """Run `fn(client)`; on the first failure warn once and stop logging."""
        if self.failed:
            return False
        try:
            if self._client is None:
                self._client = _client(self.tracking_uri)
            fn(self._client)
            return True
        except Exception as e:
            self.failed = True
            first = (str(e).strip().splitlines() or [""])[0][:300]
            log.warning(
                "MLflow at %s: %s failed (%s: %s); the run goes on without MLflow "
                "(its run directory keeps every record)",
                self.tracking_uri,
                what,
                type(e).__name__,
                first,
            )
            return False

    def log_metrics(self, record: dict[str, Any], step: int) -> bool:
        """Log the numeric values of one record at `step` (the epoch), stamped with the
        record's ``timestamp`` (unix s) when it has one."""
        stamp = record.get("timestamp")
        ms = int(1000 * (stamp if isinstance(stamp, int | float) else time.time()))
        values = [
            (str(k), float(v))
            for k, v in record.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v
        ]

        def log_all(client: Any) -> None:
            # Imported here: a worker without MLflow must cost the run its MLflow logging,
            # never its training.
            from mlflow.entities import Metric

            metrics = [Metric(k, v, ms, step) for k, v in values]
            for chunk in _chunks(metrics, _MAX_METRICS):
                client.log_batch(self.run_id, metrics=chunk)

        return self._call("logging metrics", log_all)

    def set_tags(self, tags: dict[str, str]) -> bool:
        """Set (or replace) tags of the run."""

        def set_all(client: Any) -> None:
            from mlflow.entities import RunTag

            client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

        return self._call("setting tags", set_all)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> bool:
        """Copy one file into the run's artefacts (under `artifact_path`); a missing file is
        skipped."""
        if not Path(path).is_file():
            return False
        return self._call(
            f"logging {Path(path).name}",
            lambda c: c.log_artifact(self.run_id, str(path), artifact_path),
        )

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> bool:
        """Copy a folder's files into the run's artefacts (under `artifact_path`)."""
        if not Path(folder).is_dir():
            return False
        return self._call(
            f"logging {Path(folder).name}/",
            lambda c: c.log_artifacts(self.run_id, str(folder), artifact_path),
        )

    def end(self, status: str = "FINISHED") -> bool:
        """Mark the run FINISHED, FAILED or KILLED."""
        return self._call("ending the run", lambda c: c.set_terminated(self.run_id, status))


def target_of(folder: str | Path) -> MlflowTarget | None:
    """The store and experiment of the MLflow run recorded in `folder` (a sweep's, for its
    trials' child runs); None when it has none."""
    recorded = read_json_object(Path(folder) / MLFLOW_FILE)
    if not recorded.get("tracking_uri") or not recorded.get("experiment_id"):
        return None
    return MlflowTarget(str(recorded["tracking_uri"]), str(recorded["experiment_id"]))


def end_run(sink: MlflowSink, run: RunDir, status: str) -> None:
    """Log a finished run's summary.json and curves.png, then end its MLflow run with
    `status` (FINISHED, FAILED or KILLED)."""
    sink.log_artifact(run.summary_path)
    sink.log_artifact(run.curves_path)
    sink.end(status)


def log_evaluation(run_dir: str | Path, reports: str | Path) -> None:
    """Log the reports `floodlab evaluate` wrote (``<run>/eval/<name>/``) into the run's
    MLflow run, under ``eval/<name>/``; nothing when the run is not tracked."""
    sink = MlflowSink.of(run_dir)
    if sink is not None:
        sink.log_artifacts(reports, f"eval/{Path(reports).name}")
