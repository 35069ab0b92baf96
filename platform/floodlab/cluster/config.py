"""Where the cluster is and what a job carries: address, project folder, runtime env, entrypoint."""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from floodlab.errors import ClusterError

# The Ray Jobs API is served by the head node's dashboard; 127.0.0.1 unless told otherwise
# (a remote head is reached through `ray dashboard ray_cluster.yaml`, which forwards it).
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
ADDRESS_ENV = "RAY_ADDRESS"

# Never uploaded with a job: environments, outputs, data, caches, version control.
# Anchored at the project root ("/data"), so floodlab's own `platform/floodlab/data`
# package is not mistaken for the project's data folder (patterns are gitignore-style).
RUNTIME_EXCLUDES: tuple[str, ...] = (
    "/.venv",
    "/venv",
    "/.git",
    "/runs",
    "/data",
    "/ray_results",
    "*.zarr",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "/.pytest_cache",
    "/.ruff_cache",
    "/.mypy_cache",
    "/.floodlab-demo",
    "/build",
    "/dist",
)

# Every Jobs API request waits at most CONNECT_TIMEOUT_S to connect and READ_TIMEOUT_S for
# each answer (Ray's client sets no timeout: a port that accepts and never answers would
# hang forever). Together they keep a silent address under 30 s; TIMEOUT_ENV raises or
# lowers the read timeout. A package upload gets longer: the head stores the whole
# archive before it answers.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 25.0
UPLOAD_READ_TIMEOUT_S = 120.0
TIMEOUT_ENV = "FLOODLAB_JOBS_TIMEOUT_S"

HOW_TO_START = (
    "start a local cluster with `ray start --head --dashboard-host 127.0.0.1` (Jobs API at "
    f"{DEFAULT_ADDRESS}), or a cloud cluster with `ray up ray_cluster.yaml` and forward its "
    "dashboard with `ray dashboard ray_cluster.yaml`; then pass --address or set RAY_ADDRESS "
    "(see docs/cluster.md)"
)


def resolve_address(address: str | None = None) -> str:
    """The Jobs API URL: `address`, else $RAY_ADDRESS, else http://127.0.0.1:8265.

    ``HOST:PORT`` gets ``http://`` in front. ``auto``, ``ray://`` and wildcard hosts are
    refused: jobs go to a dashboard's HTTP address.

    Raises:
        ClusterError: the address is not an HTTP(S) dashboard address.
    """
    raw = (address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS).strip().rstrip("/")
    source = "--address" if address else (ADDRESS_ENV if os.environ.get(ADDRESS_ENV) else "default")
    url = raw if "://" in raw else f"http://{raw}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClusterError(
            f"{source} {raw!r}: not a Ray dashboard address; jobs are submitted to the "
            f"dashboard's HTTP address, e.g. {DEFAULT_ADDRESS} (port 8265 on the head node)"
        )
    if parts.hostname in ("0.0.0.0", "::"):
        raise ClusterError(
            f"{source} {raw!r}: 0.0.0.0 is a bind-all address, not a host to connect to; "
            f"use the head node's address, e.g. {DEFAULT_ADDRESS}"
        )
    return url


def request_timeouts() -> tuple[float, float]:
    """(connect, read) timeouts in seconds for one Jobs API request.

    The read timeout is $FLOODLAB_JOBS_TIMEOUT_S if set, else `READ_TIMEOUT_S`; the connect
    timeout is `CONNECT_TIMEOUT_S`, or the read timeout if that is shorter.

    Raises:
        ClusterError: $FLOODLAB_JOBS_TIMEOUT_S is not a positive number.
    """
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return CONNECT_TIMEOUT_S, READ_TIMEOUT_S
    try:
        read = float(raw)
    except ValueError:
        read = float("nan")
    if not read > 0:  # also refuses nan
        raise ClusterError(
            f"{TIMEOUT_ENV} must be a positive number of seconds, but got {raw!r}; "
            f"unset it to use the default ({READ_TIMEOUT_S:g} s)"
        )
    return min(CONNECT_TIMEOUT_S, read), read


def check_reachable(address: str, timeout_s: float | None = None) -> None:
    """Fail fast, with the fix, when nothing listens at the dashboard address.

    Args:
        address: the Jobs API URL.
        timeout_s: connect timeout; default: the connect timeout of `request_timeouts`.

    Raises:
        ClusterError: naming the address and how to start a cluster.
    """
    parts = urlsplit(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if timeout_s is None:
        timeout_s = request_timeouts()[0]
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as e:
        raise ClusterError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); {HOW_TO_START}"
        ) from None


def find_project_root(start: Path | None = None) -> Path:
    """The floodlab project folder (with pyproject.toml and platform/floodlab/) holding `start`.

    Searches `start` (default: the current directory) and its parents, then the
    folder this package was installed from in editable mode.

    Raises:
        ClusterError: no project folder found.
    """
    here = (start or Path.cwd()).resolve()
    candidates = [here, *here.parents, Path(__file__).resolve().parents[3]]
    for folder in candidates:
        if (folder / "pyproject.toml").is_file() and (folder / "platform" / "floodlab").is_dir():
            return folder
    raise ClusterError(
        f"{here}: not inside a floodlab project folder (one with pyproject.toml and "
        "platform/floodlab/); run the command from the project or pass --project-dir"
    )


def runtime_env(root: Path, env_vars: dict[str, str] | None = None) -> dict[str, Any]:
    """The job's Ray runtime environment: the project folder as its working directory.

    Nothing is pip-installed: the job runs the floodlab installed on the cluster's nodes
    (ray_cluster.yaml's setup commands install the project that `ray up` syncs), with
    the uploaded project as its current directory, so the spec and every relative path
    in it resolve as they do locally.
    """
    env: dict[str, Any] = {"working_dir": str(root), "excludes": list(RUNTIME_EXCLUDES)}
    if env_vars:
        env["env_vars"] = dict(env_vars)
    return env


def is_uploaded(root: Path, path: Path) -> bool:
    """Whether `path` travels with the job: inside `root`, not excluded, not git-ignored.

    Mirrors Ray's packaging rules (gitignore-style `RUNTIME_EXCLUDES` and the project's
    root .gitignore), so e.g. a spec under runs/ is known to need staging.
    """
    from pathspec import PathSpec

    path = path.resolve()
    if not path.is_relative_to(root):
        return False
    rel = path.relative_to(root).as_posix()
    patterns = list(RUNTIME_EXCLUDES)
    gitignore = root / ".gitignore"
    if gitignore.is_file():
        patterns += gitignore.read_text().splitlines()
    return not PathSpec.from_lines("gitwildmatch", patterns).match_file(rel)


def entrypoint(verb: str, spec: str, overrides: Sequence[str] = ()) -> str:
    """``python -m floodlab.cli <verb> <spec> [--set ...]``, quoted argument by argument.

    Built as an argument list and joined with `shlex.join`, so no override value can
    inject a shell command.
    """
    if verb not in ("train", "tune"):
        raise ValueError(f"Unknown verb '{verb}'; available: ['train', 'tune']")
    args = ["python", "-m", "floodlab.cli", verb, spec]
    for text in overrides:
        args += ["--set", text]
    return shlex.join(args)
