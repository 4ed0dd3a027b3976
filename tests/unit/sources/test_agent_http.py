"""AgentHTTPSource against real HTTP servers on loopback: good, slow, dead, garbage and huge agents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from webapp_scaler.sources.agent_http import AgentHTTPSource
from webapp_scaler.sources.base import Target
from webapp_scaler.sources.drain_client import AgentDrainClient, DrainError, DrainModeUnsupported
from webapp_scaler.sources.prometheus_text import MetricError, session_count

METRIC = "webapp_active_sessions"
GOOD = f"# HELP {METRIC} Active sessions.\n# TYPE {METRIC} gauge\n{METRIC} 42.0\n"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def text(body: str, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, status=status)

    return handler


async def slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(1.5)
    return web.Response(text=GOOD)


async def huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()  # chunked: no Content-Length to trust
    await response.prepare(request)
    for _ in range(300):
        await response.write(b"# " + b"x" * 8190 + b"\n")
    await response.write_eof()
    return response


def redirect_to(location: str, status: int) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


ROUTES: dict[str, Handler] = {
    "/good": text(GOOD),
    "/labelled": text(f'{METRIC}{{context="/shop"}} 10\n{METRIC}{{context="/admin"}} 3\n'),
    "/zero": text(f"{METRIC} 0\n"),
    "/nan": text(f"{METRIC} NaN\n"),
    "/inf": text(f"{METRIC} +Inf\n"),
    "/negative": text(f"{METRIC} -3\n"),
    "/other-metric": text("process_cpu_seconds_total 1.5\n"),
    "/garbage": text("<html>this is not prometheus</html>{{{"),
    "/error": text("boom", status=500),
    "/slow": slow,
    "/huge": huge,
    # a VM pointing the scrape elsewhere: at a metric that would scale to max, on the same server
    "/redirect": redirect_to("/elsewhere", 302),
    "/elsewhere": text(f"{METRIC} 999\n"),
}


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` on a free loopback port, for the block; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def agent_url() -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in ROUTES.items():
        app.router.add_get(path, handler)
    async with serving(app) as base:
        yield base


@pytest.fixture
async def source() -> AsyncIterator[AgentHTTPSource]:
    async with aiohttp.ClientSession() as session:
        yield AgentHTTPSource(session, max_body=1 << 20)


@pytest.mark.parametrize(
    ("path", "sessions", "error"),
    [
        ("/good", 42.0, None),
        ("/labelled", 13.0, None),
        ("/zero", 0.0, None),
        ("/nan", None, "invalid value nan"),
        ("/inf", None, "invalid value inf"),
        ("/negative", None, "invalid value -3"),
        ("/other-metric", None, "metric webapp_active_sessions not found"),
        ("/garbage", None, "unparsable metrics"),
        ("/error", None, "HTTP 500"),
        ("/slow", None, "timed out after 0.5 s"),
        ("/huge", None, "larger than 1048576 bytes"),
        ("/redirect", None, "HTTP 302"),  # never followed
    ],
    ids=lambda v: str(v),
)
async def test_one_agent(
    source: AgentHTTPSource, agent_url: str, path: str, sessions: float | None, error: str | None
) -> None:
    [reading] = await source.read([Target("vm-a", agent_url + path)], metric=METRIC, scrape_timeout=0.5)
    assert reading.vm == "vm-a"
    assert reading.sessions == sessions
    if error is None:
        assert reading.error is None
    else:
        assert reading.error is not None
        assert error in reading.error


async def test_partial_failure_keeps_every_other_reading(source: AgentHTTPSource, agent_url: str) -> None:
    targets = [
        Target("good", agent_url + "/good"),
        Target("slow", agent_url + "/slow"),
        Target("dead", "http://127.0.0.1:9/metrics"),  # discard port: connection refused
        Target("labelled", agent_url + "/labelled"),
    ]
    readings = await source.read(targets, metric=METRIC, scrape_timeout=0.5)
    assert [r.vm for r in readings] == ["good", "slow", "dead", "labelled"]
    assert [r.sessions for r in readings] == [42.0, None, None, 13.0]
    assert "ClientConnectorError" in (readings[2].error or "")


async def test_all_failed_is_all_missing_never_a_number(source: AgentHTTPSource, agent_url: str) -> None:
    targets = [Target(f"vm-{p}", agent_url + p) for p in ("/nan", "/error", "/garbage")]
    readings = await source.read(targets, metric=METRIC, scrape_timeout=0.5)
    assert all(r.sessions is None and r.error for r in readings)


def test_parser_rejects_a_broken_exposition() -> None:
    with pytest.raises(MetricError, match="unparsable"):
        session_count(f'{METRIC}{{context="/shop" 1\n', METRIC)


async def test_drain_client_speaks_the_agents_contract() -> None:
    calls: list[tuple[str, str | None]] = []

    async def drain(request: web.Request) -> web.StreamResponse:
        calls.append((request.method, request.headers.get("Authorization")))
        if request.headers.get("Authorization") != "Bearer s3cret":
            return web.json_response({"error": "bad token"}, status=401)
        return web.json_response({"draining": request.method == "POST", "active_sessions": 7})

    app = web.Application()
    app.router.add_route("*", "/drain", drain)
    async with serving(app) as base:
        url = f"{base}/drain"
        async with aiohttp.ClientSession() as session:
            client = AgentDrainClient(session)
            await client.set_draining(url, draining=True, mode="Readiness", token="s3cret", request_timeout=2)
            await client.set_draining(url, draining=False, mode="Readiness", token="s3cret", request_timeout=2)
            with pytest.raises(DrainError, match="HTTP 401"):
                await client.set_draining(url, draining=True, mode="Readiness", token="wrong", request_timeout=2)
            with pytest.raises(DrainError, match="ClientConnectorError"):
                await client.set_draining(
                    "http://127.0.0.1:9/drain", draining=True, mode="Readiness", token=None, request_timeout=2
                )
    assert [m for m, _ in calls] == ["POST", "DELETE", "POST"]


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_drain_requests_never_follow_a_redirect(method: str) -> None:
    """A VM answering 307 must not make the operator send its drain request, with the bearer token, to
    another address."""
    elsewhere: list[str | None] = []

    async def redirect(request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "/stolen"})

    async def stolen(request: web.Request) -> web.StreamResponse:
        elsewhere.append(request.headers.get("Authorization"))
        return web.json_response({"draining": True})

    app = web.Application()
    app.router.add_route("*", "/drain", redirect)
    app.router.add_route("*", "/stolen", stolen)
    async with serving(app) as base:
        url = f"{base}/drain"
        async with aiohttp.ClientSession() as session:
            with pytest.raises(DrainError, match="HTTP 307"):
                await AgentDrainClient(session).set_draining(
                    url, draining=method == "POST", mode="RefuseNewSessions", token="s3cret", request_timeout=2
                )
    assert elsewhere == []


async def test_the_drain_mode_goes_in_the_body_and_a_409_is_an_unsupported_mode() -> None:
    """The agent's contract: POST {"mode": ...}; the answer names the mode it drains in; a source that
    cannot do the mode answers 409 with the modes it can. DELETE carries no body."""
    bodies: list[tuple[str, bytes]] = []

    async def drain(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        bodies.append((request.method, raw))
        if request.method == "DELETE":
            return web.json_response({"draining": False, "mode": None, "modes": ["Readiness"]})
        mode = (await request.json())["mode"]
        if mode != "Readiness":
            error = "the push source does not see requests, so it cannot refuse only new sessions"
            return web.json_response({"error": error, "mode": None, "modes": ["Readiness"]}, status=409)
        return web.json_response({"draining": True, "mode": mode, "modes": ["Readiness"]})

    async def liar(request: web.Request) -> web.StreamResponse:
        return web.json_response({"draining": True, "mode": "Readiness", "modes": ["Readiness", "RefuseNewSessions"]})

    async def old(request: web.Request) -> web.StreamResponse:  # an agent older than drain modes
        return web.json_response({"draining": True, "active_sessions": 3})

    app = web.Application()
    app.router.add_route("*", "/drain", drain)
    app.router.add_route("*", "/liar", liar)
    app.router.add_route("*", "/old", old)
    async with serving(app) as base, aiohttp.ClientSession() as session:
        client = AgentDrainClient(session)
        await client.set_draining(f"{base}/drain", draining=True, mode="Readiness", token="t", request_timeout=2)
        with pytest.raises(DrainModeUnsupported, match="refused drain mode RefuseNewSessions") as refused:
            await client.set_draining(
                f"{base}/drain", draining=True, mode="RefuseNewSessions", token="t", request_timeout=2
            )
        assert refused.value.modes == ("Readiness",)
        assert "(it supports Readiness): the push source does not see requests" in str(refused.value)
        await client.set_draining(
            f"{base}/drain", draining=False, mode="RefuseNewSessions", token="t", request_timeout=2
        )
        with pytest.raises(DrainError, match="the agent answered mode 'Readiness'"):
            await client.set_draining(
                f"{base}/liar", draining=True, mode="RefuseNewSessions", token="t", request_timeout=2
            )
        await client.set_draining(f"{base}/old", draining=True, mode="Readiness", token="t", request_timeout=2)
    assert bodies == [
        ("POST", b'{"mode": "Readiness"}'),
        ("POST", b'{"mode": "RefuseNewSessions"}'),
        ("DELETE", b""),
    ]


async def test_a_scrape_waiting_for_a_free_slot_is_not_timed_out_meanwhile(agent_url: str) -> None:
    """Two slow-ish agents through one slot: the second waits for the first, and its deadline only starts
    once it is sent, so both answers count (with one shared deadline the second would time out)."""

    async def lagging(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.4)
        return web.Response(text=GOOD)

    app = web.Application()
    app.router.add_get("/lagging", lagging)
    async with serving(app) as base, aiohttp.ClientSession() as session:
        source = AgentHTTPSource(session, concurrency=1)
        targets = [Target("a", base + "/lagging"), Target("b", base + "/lagging")]
        readings = await source.read(targets, metric=METRIC, scrape_timeout=0.6)
    assert [r.sessions for r in readings] == [42.0, 42.0]
