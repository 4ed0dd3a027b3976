"""The tomcat, connections and push sources against real listeners, and the in-process middleware."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import aiohttp
import pytest
from aiohttp import web

from session_agent.asgi import SessionCountingASGIMiddleware
from session_agent.sources.connections import count_established
from session_agent.sources.tomcat import TomcatError, parse_list, parse_sessions
from session_agent.wsgi import SessionCountingMiddleware
from tests.unit.agent.conftest import FakeClock, StartAgent, serve_app

# Answers as Tomcat 9/10's ManagerServlet prints them (LocalStrings: managerServlet.listed,
# managerServlet.listitem, managerServlet.sessions, managerServlet.sessiondefaultmax, ...sessiontimeout).
TOMCAT_LIST = """OK - Listed applications for virtual host [localhost]
/:running:0:ROOT
/examples:running:0:examples
/shop:running:17:shop##42
/host-manager:running:0:host-manager
/manager:running:1:manager
/docs:stopped:0:docs
"""
TOMCAT_SESSIONS = """OK - Session information for application at context path [/shop]
Default maximum session inactive interval is [30] minutes
[<1] minutes: [9] sessions
[1 - <2] minutes: [4] sessions
[7 - <8] minutes: [3] sessions
[>=30] minutes: [1] sessions
"""
TOMCAT7_SESSIONS = """OK - Session information for application at context path /shop
Default maximum session inactive interval 30 minutes
<1 minutes: 2 sessions
1 - <2 minutes: 1 sessions
Unlimited time: 2 sessions
"""


@pytest.mark.parametrize(
    ("context", "active", "running"),
    [
        pytest.param("/shop", 17, True, id="versioned-app"),
        pytest.param("/", 0, True, id="root"),
        pytest.param("/docs", 0, False, id="stopped"),
    ],
)
def test_parse_tomcat_list(context: str, active: int, running: bool) -> None:
    reading = parse_list(TOMCAT_LIST, context)
    assert (reading.active, reading.running) == (active, running)


@pytest.mark.parametrize(
    ("text", "total"),
    [
        pytest.param(TOMCAT_SESSIONS, 17, id="tomcat9"),
        pytest.param(TOMCAT7_SESSIONS, 5, id="tomcat7"),
        pytest.param(TOMCAT_SESSIONS + "[>5] minutes: expired [3] sessions\n", 17, id="expire-line-ignored"),
    ],
)
def test_parse_tomcat_sessions(text: str, total: int) -> None:
    assert parse_sessions(text) == total


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("FAIL - No context exists named [&#47;nope]\n", id="fail"),
        pytest.param("", id="empty"),
        pytest.param("<html>login page</html>", id="html"),
    ],
)
def test_tomcat_failures_are_errors(text: str) -> None:
    with pytest.raises(TomcatError):
        parse_sessions(text)
    with pytest.raises(TomcatError):
        parse_list(text, "/shop")


@pytest.fixture
async def tomcat_manager() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A real HTTP server speaking the manager text API with basic auth (manager-script user)."""
    state: dict[str, Any] = {"list": TOMCAT_LIST, "sessions": TOMCAT_SESSIONS, "hits": 0}

    def authorized(request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth == "Basic " + base64.b64encode(b"robot:pw").decode()

    async def listing(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="Tomcat Manager"'})
        state["hits"] += 1
        return web.Response(text=state["list"])

    async def sessions(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.Response(status=401)
        if request.query.get("path") != "/shop":
            return web.Response(text=f"FAIL - No context exists named [{request.query.get('path')}]\n")
        return web.Response(text=state["sessions"])

    app = web.Application()
    app.add_routes([web.get("/manager/text/list", listing), web.get("/manager/text/sessions", sessions)])
    runner, port = await serve_app(app)
    yield f"http://127.0.0.1:{port}/manager/text", state
    await runner.cleanup()


async def test_tomcat_source_reads_the_manager(
    start_agent: StartAgent, tomcat_manager: tuple[str, dict[str, Any]], tmp_path: Any, clock: FakeClock
) -> None:
    url, state = tomcat_manager
    password = tmp_path / "pw"
    password.write_text("pw\n")
    common = {
        "source": "tomcat",
        "tomcat_manager_url": url,
        "tomcat_user": "robot",
        "tomcat_context": "/shop",
    }
    listing = await start_agent(**common, tomcat_password_file=password)
    sessions = await start_agent(**common, tomcat_password_file=password, tomcat_command="sessions")
    assert await listing.metric("webapp_active_sessions", source="tomcat") == 17
    assert await sessions.metric("webapp_active_sessions") == 17

    # Readings are cached for a second of the agent's clock, so scrapes do not hammer Tomcat.
    state["list"] = TOMCAT_LIST.replace(":17:", ":4:")
    assert await listing.metric("webapp_active_sessions") == 17
    clock.advance(1.5)
    assert await listing.metric("webapp_active_sessions") == 4
    assert await listing.metric("webapp_session_source_up") == 1

    # Tomcat says FAIL: the source is down, the last value stays, and /readyz explains why.
    state["list"] = "FAIL - Encountered exception [java.lang.IllegalStateException]\n"
    clock.advance(1.5)
    assert await listing.metric("webapp_session_source_up") == 0
    assert await listing.metric("webapp_active_sessions") == 4
    async with aiohttp.ClientSession() as client, client.get(f"{listing.metrics_url}/readyz") as r:
        assert r.status == 503


async def test_tomcat_source_with_wrong_password_is_down(
    start_agent: StartAgent, tomcat_manager: tuple[str, dict[str, Any]], tmp_path: Any
) -> None:
    url, _ = tomcat_manager
    password = tmp_path / "pw"
    password.write_text("wrong")
    agent = await start_agent(
        source="tomcat", tomcat_manager_url=url, tomcat_user="robot", tomcat_password_file=password
    )
    assert await agent.metric("webapp_session_source_up") == 0


def _hold_connections(
    family: socket.AddressFamily, host: str, clients: int
) -> tuple[socket.socket, list[socket.socket]]:
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    sockets = []
    for _ in range(clients):
        client = socket.create_connection((host, port))
        server_side, _ = listener.accept()
        sockets += [client, server_side]
    return listener, sockets


@pytest.mark.parametrize(
    ("family", "host"),
    [pytest.param(socket.AF_INET, "127.0.0.1", id="tcp"), pytest.param(socket.AF_INET6, "::1", id="tcp6")],
)
async def test_connections_source_counts_established_connections(
    start_agent: StartAgent, family: socket.AddressFamily, host: str
) -> None:
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        listener, sockets = _hold_connections(family, host, 7)
    except OSError as error:
        pytest.skip(f"cannot listen on {host}: {error}")
    try:
        port = listener.getsockname()[1]
        agent = await start_agent(source="connections", app_port=port)
        assert await agent.metric("webapp_active_sessions", source="connections") == 7
        for sock in sockets[:4]:  # two client/server pairs close
            sock.close()
        await asyncio.sleep(0.05)
        assert await agent.metric("webapp_active_sessions") == 5
        distinct = await start_agent(source="connections", app_port=port, distinct_peers=True)
        assert await distinct.metric("webapp_active_sessions") == 1  # all from one address
    finally:
        listener.close()
        for sock in sockets:
            sock.close()


def test_count_established_parses_proc_format() -> None:
    lines = [
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0",
        "   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0",
        "   2: 0100007F:D2A4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0",
        "   3: 0A00000A:1F90 0B00000A:C001 01 00000000:00000000 00:00000000 00000000  1000        0 4 1 0",
        "   4: 0A00000A:1F90 0B00000A:C002 06 00000000:00000000 00:00000000 00000000  1000        0 5 1 0",
        "   garbage line",
    ]
    assert count_established(lines, 8080) == 2  # listener, client side and TIME_WAIT excluded
    assert count_established(lines, 8080, distinct_peers=True) == 2


async def test_push_source(start_agent: StartAgent) -> None:
    agent = await start_agent(source="push")
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{agent.metrics_url}/push", json={"active_sessions": 42, "started": 50}) as r:
            assert r.status == 200
        assert await agent.metric("webapp_active_sessions", source="push") == 42
        assert await agent.metric("webapp_sessions_started_total") == 50
        async with client.post(f"{agent.metrics_url}/push", data=b"7") as r:
            assert r.status == 200
        assert await agent.metric("webapp_active_sessions") == 7
        for bad in (
            b"not json",
            b'{"active_sessions": -1}',
            b'{"active_sessions": true}',
            b"{}",
            b"x" * 10_000,
        ):
            async with client.post(f"{agent.metrics_url}/push", data=bad) as r:
                assert r.status in (400, 413)
        assert await agent.metric("webapp_active_sessions") == 7


async def test_push_source_goes_down_when_the_app_stops_pushing(start_agent: StartAgent, clock: FakeClock) -> None:
    agent = await start_agent(source="push", push_stale_after=10.0)
    push = {"active_sessions": 3}
    async with aiohttp.ClientSession() as client, client.post(f"{agent.metrics_url}/push", json=push) as r:
        assert r.status == 200
    assert await agent.metric("webapp_session_source_up") == 1
    clock.advance(11)
    assert await agent.metric("webapp_session_source_up") == 0


def _wsgi_shop(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A tiny WSGI app that starts a session on /login and clears it on /logout."""
    path = environ["PATH_INFO"]
    headers = [("Content-Type", "text/plain")]
    if path.startswith("/login/"):
        headers.append(("Set-Cookie", f"sessionid={path.rsplit('/', 1)[1]}; Path=/; HttpOnly"))
    elif path == "/logout":
        headers.append(("Set-Cookie", "sessionid=; Max-Age=0; Path=/"))
    start_response("200 OK", headers)
    return [b"ok"]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


async def test_wsgi_middleware_counts_and_pushes_to_the_agent(start_agent: StartAgent, clock: FakeClock) -> None:
    agent = await start_agent(source="push")
    app = SessionCountingMiddleware(_wsgi_shop, cookie_names=["sessionid"], idle_timeout=60, clock=clock)
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        async with aiohttp.ClientSession() as client:
            for user in ("a", "b", "c"):
                async with client.get(f"{base}/login/{user}") as r:
                    assert r.status == 200
            async with client.get(f"{base}/page", headers={"Cookie": "sessionid=b"}) as r:
                assert r.status == 200
            async with client.get(f"{base}/logout", headers={"Cookie": "sessionid=c"}) as r:
                assert r.status == 200
        reporter = app.reporter(f"{agent.metrics_url}/push")
        assert await asyncio.to_thread(reporter.push_once)
        assert await agent.metric("webapp_active_sessions", source="push") == 2
        assert await agent.metric("webapp_requests_total") == 5
        clock.advance(61)
        assert await asyncio.to_thread(reporter.push_once)
        assert await agent.metric("webapp_active_sessions") == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_asgi_middleware_counts_sessions(clock: FakeClock) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = []
        if scope["path"].startswith("/login/"):
            headers.append((b"set-cookie", b"connect.sid=" + scope["path"].rsplit("/", 1)[1].encode() + b"; Path=/"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = SessionCountingASGIMiddleware(app, idle_timeout=60, clock=clock)
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    for path, cookie in (
        ("/login/x", b""),
        ("/login/y", b""),
        ("/cart", b"connect.sid=x"),
        ("/", b"connect.sid=z"),
    ):
        scope = {"type": "http", "path": path, "headers": [(b"cookie", cookie)] if cookie else []}
        await middleware(scope, receive, send)
    assert middleware.tracker.active() == 3
    assert len(sent) == 8  # the app's messages pass through untouched
    clock.advance(61)
    assert middleware.tracker.active() == 0
    await middleware.aclose()
