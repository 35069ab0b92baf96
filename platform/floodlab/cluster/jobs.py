"""Ray Jobs: submit a validated spec to a running cluster, list jobs, read logs, stop them."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floodlab.cluster.config import (
    HOW_TO_START,
    TIMEOUT_ENV,
    UPLOAD_READ_TIMEOUT_S,
    check_reachable,
    entrypoint,
    find_project_root,
    is_uploaded,
    request_timeouts,
    resolve_address,
    runtime_env,
)
from floodlab.errors import ClusterError, SpecError

log = logging.getLogger(__name__)

STAGING = ".floodlab-submit"  # holds a spec from outside the project while it is uploaded
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
# A head that has just started answers the Jobs API before its job agent registers, and
# refuses submissions with "No available agent ... try again later" meanwhile.
AGENT_WAIT_S = 90.0
NO_AGENT = "No available agent"


@dataclass(frozen=True)
class Submitted:
    """A submitted job.

    Attributes:
        job_id: the submission id (``floodlab jobs``/``logs``/``stop`` take it).
        address: the Jobs API it went to.
        entrypoint: the command the cluster runs.
        warnings: things the user should know (e.g. runs written to a temporary folder).
    """

    job_id: str
    address: str
    entrypoint: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRow:
    """One line of ``floodlab jobs``.

    Attributes:
        job_id: submission id.
        status: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED.
        started: start time (UTC, ISO format) or "".
        name: the spec's experiment name, if floodlab submitted it.
        entrypoint: the command.
        message: Ray's status message.
    """

    job_id: str
    status: str
    started: str
    name: str
    entrypoint: str
    message: str


@functools.cache
def _client_class() -> type:
    """Ray's `JobSubmissionClient` with connect and read timeouts on every request.

    Ray's client sends each request with no timeout, so an address that accepts the
    connection but never answers (a firewall, a proxy, the wrong port) hangs forever.
    """
    from ray.job_submission import JobSubmissionClient

    class TimedJobSubmissionClient(JobSubmissionClient):
        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            connect_s, read_s = request_timeouts()
            if method == "PUT" and endpoint.startswith("/api/packages/"):
                read_s = max(read_s, UPLOAD_READ_TIMEOUT_S)  # the head stores it, then answers
            kwargs.setdefault("timeout", (connect_s, read_s))
            return super()._do_request(method, endpoint, **kwargs)

    return TimedJobSubmissionClient


def _silent(address: str, what: str) -> ClusterError:
    """The error for a Jobs API that accepted a connection but did not answer in time."""
    read_s = request_timeouts()[1]
    return ClusterError(
        f"the Ray Jobs API at {address} accepted the connection but did not answer {what} "
        f"within {read_s:g} s. Check that {address} is the dashboard (Jobs API) port of a "
        "running Ray head (8265 unless the head was started with --dashboard-port; not the "
        "GCS port 6379 or the Ray Client port 10001), that no firewall or proxy between here "
        "and the head holds the connection without forwarding it, and that --address (or "
        f"RAY_ADDRESS) is right; on a slow link raise {TIMEOUT_ENV} (seconds per answer)"
    )


def connect(address: str | None = None) -> Any:
    """A `JobSubmissionClient` for the cluster at `address` (see `resolve_address`).

    Every request the client sends has the timeouts of `request_timeouts`.

    Raises:
        ClusterError: the address is invalid, or no cluster answers there in time.
    """
    import requests

    url = resolve_address(address)
    check_reachable(url)
    try:
        return _client_class()(url)
    except requests.exceptions.Timeout:
        raise _silent(url, "its version check") from None
    except (ConnectionError, RuntimeError, requests.exceptions.RequestException) as e:
        raise ClusterError(
            f"the Ray Jobs API at {url} did not answer ({e}); {HOW_TO_START}"
        ) from None


def submit(
    spec_path: str | Path,
    overrides: Sequence[str] = (),
    *,
    tune: bool = False,
    address: str | None = None,
    project_dir: str | Path | None = None,
    env_vars: dict[str, str] | None = None,
) -> Submitted:
    """Validate a spec locally, then submit ``floodlab train|tune`` on it as a Ray job.

    The spec (with the overrides) is validated first: an invalid spec raises SpecError
    and nothing is sent. The project folder is uploaded as the job's working directory
    (without .venv, runs, data, .git, ...); a spec that would not travel with it (outside
    the project, or under runs/ or data/) is staged inside it for the upload and removed
    right after.

    Args:
        spec_path: the experiment spec (YAML).
        overrides: ``--set path=value`` overrides, passed on to the job verbatim.
        tune: run ``floodlab tune`` (the spec needs a ``tune`` section) instead of train.
        address: the Jobs API (see `resolve_address`).
        project_dir: the project folder to upload; found from the current directory.
        env_vars: extra environment variables for the job.

    Returns:
        The submitted job.

    Raises:
        SpecError: the spec is invalid (nothing submitted).
        ClusterError: the cluster is unreachable or refused the job.
    """
    from floodlab.specs import load_spec, spec_hash

    spec = load_spec(spec_path, overrides)
    if tune and spec.tune is None:
        raise SpecError(
            [
                f"{spec_path}: tune: --tune needs a `tune` section in the spec (see experiments/sweep_*.yaml)"
            ]
        )
    verb = "tune" if tune else "train"
    root = find_project_root(Path(project_dir) if project_dir else None)
    client = connect(address)  # fail on an unreachable cluster before staging anything
    spec_file = Path(spec_path).resolve()
    staged: Path | None = None
    if is_uploaded(root, spec_file):
        spec_arg = spec_file.relative_to(root).as_posix()
    else:  # outside the project, or in a folder that is not uploaded (runs/, data/)
        staged = root / STAGING / f"{spec.name}-{spec_hash(spec)}.yaml"
        staged.parent.mkdir(exist_ok=True)
        shutil.copyfile(spec_file, staged)
        spec_arg = staged.relative_to(root).as_posix()
    command = entrypoint(verb, spec_arg, overrides)
    job_id = f"floodlab-{verb}-{spec.name}-{secrets.token_hex(3)}"
    warnings: list[str] = []
    if "://" not in spec.logging.root and not Path(spec.logging.root).is_absolute():
        warnings.append(
            f"logging.root is {spec.logging.root!r}, relative to the job's temporary working "
            "directory on the cluster: set it to shared storage (e.g. --set "
            "logging.root=s3://bucket/runs) or an absolute path on the head node to keep runs"
        )
    try:
        _submit_when_an_agent_is_ready(
            client,
            entrypoint=command,
            submission_id=job_id,
            runtime_env=runtime_env(root, env_vars),
            metadata={
                "floodlab_spec": spec.name,
                "floodlab_verb": verb,
                "spec_hash": spec_hash(spec),
            },
        )
    except ValueError as e:  # e.g. a working dir too large to upload
        raise ClusterError(f"{client.get_address()} refused job {job_id}: {e}") from None
    finally:
        if staged is not None:  # uploaded during submit_job: the copy is no longer needed
            staged.unlink(missing_ok=True)
            if not any(staged.parent.iterdir()):
                staged.parent.rmdir()
    log.info("submitted %s to %s: %s", job_id, client.get_address(), command)
    return Submitted(job_id, client.get_address(), command, tuple(warnings))


def _submit_when_an_agent_is_ready(client: Any, **job: Any) -> None:
    """`submit_job`, retried while the head says it has no job agent yet (see AGENT_WAIT_S).

    A refused submission creates no job, so trying again with the same submission id is
    safe; the working directory already uploaded is found on the head and not sent again.
    """
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            _call(client, None, "submit_job", **job)
            return
        except ClusterError as e:
            if NO_AGENT not in str(e):
                raise
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{e}: the head has had no job agent for {AGENT_WAIT_S:g} s; see its "
                    "dashboard_agent log (`ray logs cluster` on the head) and restart the head"
                ) from None
        log.info("the head at %s has no job agent yet; trying again", client.get_address())
        time.sleep(1.0)


def list_jobs(address: str | None = None) -> list[JobRow]:
    """Jobs known to the cluster, oldest first."""
    client = connect(address)
    rows = []
    for job in sorted(_call(client, None, "list_jobs"), key=lambda j: j.start_time or 0):
        started = (
            datetime.fromtimestamp(job.start_time / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
            if job.start_time
            else ""
        )
        rows.append(
            JobRow(
                job_id=job.submission_id or job.job_id or "?",
                status=str(job.status.value if hasattr(job.status, "value") else job.status),
                started=started,
                name=(job.metadata or {}).get("floodlab_spec", ""),
                entrypoint=job.entrypoint or "",
                message=job.message or "",
            )
        )
    return rows


def _auth_error(client: Any, e: Exception) -> ClusterError:
    return ClusterError(
        f"the Ray cluster at {client.get_address()} requires its authentication token "
        f"({str(e).splitlines()[0]}); set RAY_AUTH_MODE=token and put the token (from "
        "`ray get-auth-token` on the head node) in RAY_AUTH_TOKEN or ~/.ray/auth_token"
    )


def _call(client: Any, job_id: str | None, fn: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method (on one job, if `job_id`); Ray errors become ClusterErrors."""
    import requests
    from ray.exceptions import AuthenticationError

    try:
        if job_id is None:
            return getattr(client, fn)(*args, **kwargs)
        return getattr(client, fn)(job_id, *args, **kwargs)
    except AuthenticationError as e:
        raise _auth_error(client, e) from None
    except requests.exceptions.Timeout:
        raise _silent(client.get_address(), f"{fn} {job_id or ''}".strip()) from None
    except (ConnectionError, requests.exceptions.RequestException) as e:
        raise ClusterError(f"{client.get_address()}: {fn} failed: {e}") from None
    except RuntimeError as e:
        if job_id is None:
            raise ClusterError(f"{client.get_address()}: {fn} failed: {e}") from None
        if "404" in str(e) or "does not exist" in str(e):
            raise ClusterError(
                f"no job {job_id!r} on {client.get_address()}; list them with "
                f"`floodlab jobs --address {client.get_address()}`"
            ) from None
        raise ClusterError(f"{client.get_address()}: {fn} {job_id} failed: {e}") from None


def job_status(job_id: str, address: str | None = None) -> str:
    """PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    client = connect(address)
    status = _call(client, job_id, "get_job_status")
    return str(status.value if hasattr(status, "value") else status)


def job_logs(job_id: str, address: str | None = None) -> str:
    """Everything the job has printed so far."""
    return str(_call(connect(address), job_id, "get_job_logs"))


async def _next_chunk(stream: AsyncIterator[str]) -> str | None:
    """The stream's next chunk, or None once it has ended."""
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


def follow_logs(job_id: str, address: str | None = None) -> Iterator[str]:
    """Chunks of the job's output as it prints them, until the job ends.

    A job may print nothing for a long time, so the read timeout applies to each quiet
    spell, not to the whole job: when no chunk arrives within it, the job's status is
    requested (with the usual timeouts) and, if the head answers, the wait goes on. A head
    that stops answering ends the stream with a ClusterError. A stream still open a read
    timeout after the head reported the job finished ends there (Ray closes it when the
    job ends, so nothing is lost).

    Raises:
        ClusterError: no such job, the head stopped answering, or the stream broke.
    """
    import aiohttp

    client = connect(address)
    _call(client, job_id, "get_job_info")  # a clear error for unknown jobs
    stream = client.tail_job_logs(job_id)
    loop = asyncio.new_event_loop()
    pending: asyncio.Task[str | None] | None = None
    try:
        while True:
            pending = loop.create_task(_next_chunk(stream))
            finished = False  # the head said the job ended while the stream was quiet
            while True:
                wait = asyncio.wait({pending}, timeout=request_timeouts()[1])
                if loop.run_until_complete(wait)[0]:
                    break
                if finished:
                    return  # ended, and nothing more came: do not wait forever
                status = _call(client, job_id, "get_job_status")  # quiet job or silent head?
                finished = str(getattr(status, "value", status)) in TERMINAL
            try:
                chunk = pending.result()
            except (RuntimeError, aiohttp.ClientError) as e:
                raise ClusterError(
                    f"{client.get_address()}: the log stream of job {job_id} broke ({e}); "
                    f"the job may still be running: see `floodlab jobs --address "
                    f"{client.get_address()}`, then `floodlab logs {job_id} --follow`"
                ) from None
            pending = None
            if chunk is None:
                return
            yield chunk
    finally:
        if pending is not None:  # stopped while a read was in flight: cancel it first
            pending.cancel()
            loop.run_until_complete(asyncio.gather(pending, return_exceptions=True))
        loop.run_until_complete(stream.aclose())
        loop.close()


def stop_job(job_id: str, address: str | None = None) -> bool:
    """Ask the cluster to stop a job; False if it had already finished."""
    return bool(_call(connect(address), job_id, "stop_job"))


def wait_for_job(
    job_id: str, address: str | None = None, *, timeout_s: float = 600.0, poll_s: float = 1.0
) -> str:
    """Poll until the job reaches a terminal status (or the deadline); return the status.

    Raises:
        ClusterError: the deadline passed first.
    """
    client = connect(address)
    deadline = time.monotonic() + timeout_s
    while True:
        status = _call(client, job_id, "get_job_status")
        status = str(status.value if hasattr(status, "value") else status)
        if status in TERMINAL:
            return status
        if time.monotonic() > deadline:
            raise ClusterError(
                f"job {job_id} is still {status} after {timeout_s:.0f} s; follow it with "
                f"`floodlab logs {job_id} --follow` or stop it with `floodlab stop {job_id}`"
            )
        time.sleep(poll_s)
