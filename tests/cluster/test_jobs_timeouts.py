"""Jobs API calls time out: a port that never answers fails fast; quiet log streams go on."""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.cluster.config import TIMEOUT_ENV, request_timeouts
from floodlab.errors import ClusterError

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "experiments" / "quickstart.yaml")
SHORT_TIMEOUT_S = "0.3"  # the tests' read timeout; the product default is 25 s


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts every connection and never sends a byte."""
    release = threading.Event()

    class Silent(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            release.wait()  # hold the connection open, answer nothing

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def test_jobs_api_timeouts_stay_under_30_s_and_refuse_nonsense(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    connect_s, read_s = request_timeouts()
    assert connect_s > 0 and read_s > 0 and connect_s + read_s <= 30
    monkeypatch.setenv(TIMEOUT_ENV, "2")
    assert request_timeouts() == (2.0, 2.0)
    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(ClusterError, match=f"{TIMEOUT_ENV} must be a positive number"):
            request_timeouts()
    result = CliRunner().invoke(main, ["jobs", "--address", "http://127.0.0.1:1"])
    assert result.exit_code == 2 and TIMEOUT_ENV in result.output
    assert "Traceback" not in result.output


@pytest.mark.timeout(60)  # a hang fails the test here instead of blocking the suite
@pytest.mark.parametrize(
    "verb",
    [
        ["submit", QUICKSTART],
        ["jobs"],
        ["logs", "a-job"],
        ["logs", "a-job", "--follow"],
        ["stop", "a-job"],
    ],
    ids=["submit", "jobs", "logs", "follow", "stop"],
)
def test_a_port_that_never_answers_fails_with_what_to_check(
    verb: list[str], silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, SHORT_TIMEOUT_S)
    address = f"http://127.0.0.1:{silent_port}"
    result = CliRunner().invoke(main, [*verb, "--address", address])
    assert result.exit_code == 2, result.output  # it returned, as a user error
    assert f"{address} accepted the connection but did not answer" in result.output
    for hint in ("dashboard (Jobs API) port", "8265", "firewall", "--address", TIMEOUT_ENV):
        assert hint in result.output, hint
    assert "Traceback" not in result.output
    assert not (ROOT / ".floodlab-submit").exists()


@dataclass
class FakeHead:
    """A stand-in for a head's Jobs API on 127.0.0.1 that streams one job's log.

    The log stream sends "epoch 1", then stays quiet until the client asks for the job's
    status (which it does only after a read timeout without output), then sends "epoch 2"
    and ends. With `silent_status`, the head answers the first status request (follow's
    check that the job exists) and then nothing more: the client's next poll hangs.
    """

    silent_status: bool = False
    address: str = ""
    status_requests: int = 0
    agentless_submits: int = 0  # submissions refused as by a head whose agent is starting
    submitted: list[str] = field(default_factory=list)
    polled: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)  # set at teardown

    async def version(self, request: web.Request) -> web.Response:
        import ray

        return web.json_response({"version": "4", "ray_version": ray.__version__})

    async def job(self, request: web.Request) -> web.Response:
        self.status_requests += 1
        self.polled.set()
        if self.silent_status and self.status_requests > 1:
            await self.released.wait()
        job = {
            "type": "SUBMISSION",
            "submission_id": request.match_info["job_id"],
            "status": "RUNNING",
            "entrypoint": "python -m floodlab.cli train spec.yaml",
        }
        return web.json_response(job)

    async def package(self, request: web.Request) -> web.Response:
        return web.Response(status=200)  # the working dir is already on the head

    async def submit(self, request: web.Request) -> web.Response:
        job = await request.json()
        if self.agentless_submits > 0:
            self.agentless_submits -= 1
            return web.Response(
                status=500, text="No available agent to submit job, please try again later."
            )
        self.submitted.append(job["submission_id"])
        return web.json_response({"job_id": "raysubmit_1", "submission_id": job["submission_id"]})

    async def tail(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("epoch 1\n")
        if self.silent_status:
            await self.released.wait()
        else:
            self.polled.clear()
            await self.polled.wait()  # quiet until the client polls the status
            await ws.send_str("epoch 2\n")
        await ws.close()
        return ws


@pytest.fixture
def fake_head(request: pytest.FixtureRequest) -> Iterator[FakeHead]:
    """A `FakeHead` on a free port of 127.0.0.1, served from a background thread.

    Parametrise it indirectly with True for a head whose status requests go unanswered.
    """
    head = FakeHead(silent_status=getattr(request, "param", False))
    app = web.Application()
    app.router.add_get("/api/version", head.version)
    app.router.add_get("/api/jobs/{job_id}", head.job)
    app.router.add_get("/api/jobs/{job_id}/logs/tail", head.tail)
    app.router.add_get("/api/packages/{protocol}/{name}", head.package)
    app.router.add_post("/api/jobs/", head.submit)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    head.address = f"http://127.0.0.1:{runner.addresses[0][1]}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield head
    finally:
        loop.call_soon_threadsafe(head.released.set)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


@pytest.mark.timeout(60)
def test_following_a_quiet_job_keeps_streaming_past_the_read_timeout(
    fake_head: FakeHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, SHORT_TIMEOUT_S)
    result = CliRunner().invoke(main, ["logs", "a-job", "--follow", "--address", fake_head.address])
    # "epoch 2" comes only after the stream was quiet for a whole read timeout and the
    # client asked for the job's status: the follow outlived the quiet spell.
    assert result.exit_code == 0, result.output
    assert result.output == "epoch 1\nepoch 2\n"
    assert fake_head.status_requests >= 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fake_head", [True], indirect=True, ids=["silent-head"])
def test_following_stops_with_what_to_check_when_the_head_goes_silent(
    fake_head: FakeHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, SHORT_TIMEOUT_S)
    result = CliRunner().invoke(main, ["logs", "a-job", "--follow", "--address", fake_head.address])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("epoch 1\n")  # what arrived is kept
    assert f"{fake_head.address} accepted the connection but did not answer" in result.output
    assert "get_job_status a-job" in result.output and "Traceback" not in result.output


@pytest.mark.timeout(60)
def test_a_submission_waits_for_a_starting_heads_job_agent(
    fake_head: FakeHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_head.agentless_submits = 2  # a head just started: its agent registers a bit later
    result = CliRunner().invoke(main, ["submit", QUICKSTART, "--address", fake_head.address])
    assert result.exit_code == 0, result.output
    assert len(fake_head.submitted) == 1 and fake_head.submitted[0] in result.output


@pytest.mark.timeout(60)
def test_a_head_that_never_gets_a_job_agent_is_a_clear_error(
    fake_head: FakeHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("floodlab.cluster.jobs.AGENT_WAIT_S", 0.5)
    fake_head.agentless_submits = 10**6
    result = CliRunner().invoke(main, ["submit", QUICKSTART, "--address", fake_head.address])
    assert result.exit_code == 2, result.output
    assert "no job agent for 0.5 s" in result.output and "Traceback" not in result.output
    assert not fake_head.submitted and not (ROOT / ".floodlab-submit").exists()
