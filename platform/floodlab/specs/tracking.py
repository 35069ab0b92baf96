"""MlflowSpec: optional MLflow tracking beside TensorBoard (`logging.mlflow`). Imports no mlflow."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from floodlab.specs.base import StrictModel

# Tracking URI schemes MLflow serves: local stores, tracking servers, databases (SQLAlchemy
# dialects, optionally with a driver: postgresql+psycopg2) and Databricks.
MLFLOW_SCHEMES = ("sqlite", "file", "http", "https", "databricks", "postgresql", "mysql", "mssql")
# The validation error type of a URI that holds a credential: spec errors never echo the
# value back (`floodlab.specs.io`), so the secret does not reach the terminal or CI logs.
SECRET_ERROR = "secret_value"
# Query parameters that would carry a secret into spec.yaml.
_SECRET_QUERY = re.compile(r"token|password|passwd|secret|key", re.IGNORECASE)


def check_tracking_uri(uri: str) -> str:
    """`uri` when it is a tracking URI floodlab can record in a run; ValueError otherwise
    (a `PydanticCustomError` of type `SECRET_ERROR` when it holds a credential).

    A URI is written into every run's spec.yaml, so it must hold no credential: servers
    take theirs from the environment (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD`` or
    ``MLFLOW_TRACKING_TOKEN``), databases from their client's own files (e.g. ``~/.pgpass``).
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme not in MLFLOW_SCHEMES:
        raise ValueError(
            f"`the scheme of the tracking URI is one of {list(MLFLOW_SCHEMES)}` must hold; "
            "e.g. sqlite:///mlflow.db (a local store) or http://HOST:5000 (an MLflow "
            "tracking server)"
        )
    if scheme == "sqlite" and not parts.path.strip("/"):
        raise ValueError("a sqlite tracking URI names its database file, e.g. sqlite:///mlflow.db")
    if scheme in ("http", "https") and not parts.hostname:
        raise ValueError("a tracking server URI names its host, e.g. http://HOST:5000")
    secret = parts.password is not None or any(
        _SECRET_QUERY.search(k) for k, _ in parse_qsl(parts.query)
    )
    if secret:
        raise PydanticCustomError(
            SECRET_ERROR,
            "the tracking URI holds a credential, which would be written into every run's "
            "spec.yaml; remove it and give it through the environment instead "
            "(MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN; "
            "a database's password through its client's own file, e.g. ~/.pgpass)",
        )
    return uri


class MlflowSpec(StrictModel):
    """MLflow tracking of every run and sweep, beside TensorBoard (off without a URI)."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; None (the default) = no MLflow. A local store "
        "(sqlite:///mlflow.db, relative to where floodlab starts) or a tracking server "
        "(http://HOST:5000). Each run logs its spec as params, its epoch metrics and its "
        "artefacts; a sweep is a parent run with one child run per trial. Needs "
        "`pip install 'floodlab[mlflow]'`.",
    )
    experiment_name: str | None = Field(
        None, description="MLflow experiment the runs go to; default the spec's `name`."
    )
    artifact_location: str | None = Field(
        None,
        description="Where a new MLflow experiment keeps its artefacts; default the "
        "server's, or for a sqlite store an `mlartifacts` folder beside the database.",
    )

    @field_validator("tracking_uri")
    @classmethod
    def _known_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_tracking_uri(value.strip())
