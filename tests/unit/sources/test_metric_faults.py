"""Every way an agent's answer can be wrong, served by a real aiohttp server on loopback: each must end as an
invalid reading of that VM alone (sessions None, an error naming the agent and the problem, a stable problem
kind for the Event), never as an exception, a hang, or a number the engine would add up.

Issue 12: one agent reporting 1e308 scaled a fleet 3 → 7 VMs; a duplicated series was summed (10 read as 20)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.unit.sources.test_agent_http import serving
from webapp_scaler.sources.agent_http import AgentHTTPSource
from webapp_scaler.sources.base import Reading, Target

METRIC = "webapp_active_sessions"
MIB = 1 << 20


def text(body: str, content_type: str = "text/plain") -> web.RequestHandler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type=content_type)

    return handler


async def slow_loris(request: web.Request) -> web.StreamResponse:
    """Headers at once, then a valid body one byte every 50 ms: each read is quick, the whole never ends in time."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for byte in f"{METRIC} 5\n".encode() * 100:
        await response.write(bytes([byte]))
        await asyncio.sleep(0.05)
    return response


async def latin1(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"webapp_active_sessions 1 \xff\xfe\n", content_type="text/plain")


WRITTEN: dict[str, int] = {}


def fifty_mb(*, announced: bool) -> web.RequestHandler:
    """50 MB of comment lines, chunked or with its Content-Length; counts what the client let it write."""

    async def handler(request: web.Request) -> web.StreamResponse:
        size = 50 * 1000 * 1000
        headers = {"Content-Type": "text/plain", **({"Content-Length": str(size)} if announced else {})}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        line = b"# " + b"x" * 65533 + b"\n"
        WRITTEN[request.path] = 0
        try:
            while WRITTEN[request.path] < size:
                await response.write(line)
                WRITTEN[request.path] += len(line)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up, as it should
        return response

    return handler


OTHER_HOST_HITS: list[str] = []


ROUTES: dict[str, web.RequestHandler] = {
    "/good": text(f"{METRIC} 10\n"),
    "/garbage": text("\x00\x01 }}{{ not = metrics\n"),
    "/html": text("<!doctype html><html><body>Welcome to nginx!</body></html>", "text/html"),
    "/nan": text(f"{METRIC} NaN\n"),
    "/plus-inf": text(f"{METRIC} +Inf\n"),
    "/minus-inf": text(f"{METRIC} -Inf\n"),
    "/negative": text(f"{METRIC} -1\n"),
    "/absurd": text(f"{METRIC} 1e308\n"),
    "/just-over": text(f"{METRIC} 1000001\n"),
    "/sum-over": text(f'{METRIC}{{context="/a"}} 600000\n{METRIC}{{context="/b"}} 600000\n'),
    "/fraction": text(f"{METRIC} 2.5\n"),
    "/duplicated": text(f"{METRIC} 10\n{METRIC} 10\n"),
    "/duplicated-labels": text(
        f'{METRIC}{{context="/shop",app="a"}} 10\n{METRIC}{{context="/x"}} 1\n{METRIC}{{app="a",context="/shop"}} 10\n'
    ),
    "/latin1": latin1,
    "/slow-loris": slow_loris,
    "/fifty-mb-chunked": fifty_mb(announced=False),
    "/fifty-mb-announced": fifty_mb(announced=True),
}


@pytest.fixture
async def other_host() -> AsyncIterator[str]:
    """Another "host" (another loopback port) a redirect points to: it must never be asked."""
    OTHER_HOST_HITS.clear()

    async def hit(request: web.Request) -> web.StreamResponse:
        OTHER_HOST_HITS.append(request.path)
        return web.Response(text=f"{METRIC} 999999\n")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hit)
    async with serving(app) as base:
        yield base


@pytest.fixture
async def agent(other_host: str) -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in ROUTES.items():
        app.router.add_get(path, handler)

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{other_host}/metrics")

    app.router.add_get("/redirect", redirect)
    async with serving(app) as base:
        yield base


async def scrape(url: str, deadline: float = 2.0) -> tuple[Reading, Reading]:
    """The fault and a good agent next to it, in one round: the good one must not suffer."""
    good = url.rsplit("/", 1)[0] + "/good"
    async with aiohttp.ClientSession() as session:
        fault, healthy = await AgentHTTPSource(session).read(
            [Target("broken", url), Target("healthy", good)], metric=METRIC, scrape_timeout=deadline
        )
    assert (healthy.sessions, healthy.error) == (10.0, None)
    return fault, healthy


@pytest.mark.parametrize(
    ("path", "problem", "message"),
    [
        ("/garbage", "unparsable", "unparsable metrics"),
        ("/html", "html", "answered an HTML page (Content-Type text/html)"),
        ("/nan", "not-finite", "webapp_active_sessions has an invalid value nan"),
        ("/plus-inf", "not-finite", "invalid value inf"),
        ("/minus-inf", "not-finite", "invalid value -inf"),
        ("/negative", "range", "invalid value -1: outside 0..1000000 sessions"),
        ("/absurd", "range", "webapp_active_sessions has an invalid value 1e+308: outside 0..1000000 sessions"),
        ("/just-over", "range", "invalid value 1e+06: outside 0..1000000"),
        ("/sum-over", "range", "sums to 1.2e+06 over 2 series: outside 0..1000000"),
        ("/fraction", "not-integer", "invalid value 2.5: sessions are counted whole"),
        ("/duplicated", "duplicate", "duplicated series webapp_active_sessions: each series must appear once"),
        ("/duplicated-labels", "duplicate", 'duplicated series webapp_active_sessions{app="a",context="/shop"}'),
        ("/latin1", "encoding", "not UTF-8"),
        ("/missing", "http-404", "HTTP 404 from"),
        ("/redirect", "redirect", "HTTP 302 redirect to 'http://127.0.0.1:"),
    ],
)
async def test_a_bad_answer_is_an_invalid_reading_of_that_vm(agent: str, path: str, problem: str, message: str) -> None:
    fault, _ = await scrape(agent + path)
    assert fault.sessions is None
    assert fault.problem == problem
    host = agent.removeprefix("http://")
    assert fault.error is not None and fault.error.startswith(f"agent {host}: "), fault.error
    assert message in fault.error, fault.error


async def test_a_redirect_to_another_host_is_never_followed(agent: str) -> None:
    fault, _ = await scrape(agent + "/redirect")
    assert fault.sessions is None
    assert OTHER_HOST_HITS == []  # its 999999 sessions were never read


async def test_a_slow_loris_body_hits_the_total_deadline(agent: str) -> None:
    """Each byte comes within 50 ms, far inside any per-read timeout; only a deadline over the whole
    answer ends it. 1 s of it, then the reading fails: not the 50 s the body would take."""
    started = time.monotonic()
    fault, _ = await scrape(agent + "/slow-loris", deadline=1.0)
    took = time.monotonic() - started
    assert fault.sessions is None and fault.problem == "timeout"
    assert fault.error is not None and "timed out after 1 s (the whole answer, body included)" in fault.error
    assert 0.9 <= took < 3.0


@pytest.mark.parametrize("path", ["/fifty-mb-chunked", "/fifty-mb-announced"])
async def test_a_fifty_mb_body_is_not_read_past_one_mib(agent: str, path: str) -> None:
    fault, _ = await scrape(agent + path, deadline=10.0)
    assert fault.sessions is None and fault.problem == "too-large"
    assert fault.error is not None and f"response larger than {MIB} bytes" in fault.error
    await asyncio.sleep(0.2)  # let the server notice the hang-up
    # the client stopped reading after about a MiB (plus what the kernel's socket buffers held)
    assert WRITTEN[path] < 16 * MIB, WRITTEN[path]


async def test_an_unreachable_agent_says_so() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # the port is free now: connection refused
    async with aiohttp.ClientSession() as session:
        [reading] = await AgentHTTPSource(session).read(
            [Target("gone", f"http://127.0.0.1:{port}/metrics")], metric=METRIC, scrape_timeout=2.0
        )
    assert reading.sessions is None and reading.problem == "unreachable"
    assert reading.error is not None and reading.error.startswith(f"agent 127.0.0.1:{port}: unreachable: ")
