"""Drain: readiness fails, known sessions keep being served, new users are sent elsewhere, nothing
in flight is dropped, and the operator can watch the sessions fall to zero."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import aiohttp
import pytest

from session_agent.asgi import SessionCountingASGIMiddleware
from session_agent.drain import DrainState
from session_agent.reporter import AgentDrain
from session_agent.wsgi import SessionCountingMiddleware
from tests.unit.agent.conftest import FakeClock, RunningAgent, Shop, StartAgent, raw_exchange, user_client

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def drain_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DRAIN_TOKEN", TOKEN)


async def _status(
    client: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with client.request(method, url, headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, 401, id="wrong-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, 401, id="wrong-scheme"),
        pytest.param(AUTH, 200, id="right-token"),
    ],
)
async def test_drain_needs_the_bearer_token(proxy: RunningAgent, headers: dict[str, str], status: int) -> None:
    async with aiohttp.ClientSession() as client:
        got, _body = await _status(client, "POST", f"{proxy.metrics_url}/drain", headers=headers)
        assert got == status
        _, state = await _status(client, "GET", f"{proxy.metrics_url}/drain")
    assert state["draining"] is (status == 200)


async def test_the_load_balancers_port_cannot_reach_the_drain(proxy: RunningAgent) -> None:
    """`/drain` lives on the metrics listener only: on the port the load balancer sends users to, even
    with the right token, it is the application's path (the shop has none: 404) and nothing drains."""
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{proxy.url}/drain", headers=AUTH) as response:
            assert response.status == 404
        _, state = await _status(client, "GET", f"{proxy.metrics_url}/drain")
    assert state["draining"] is False


async def test_drain_is_disabled_without_a_configured_token(shop: Shop, start_agent: StartAgent) -> None:
    agent = await start_agent(upstream=shop.url, drain_token_env="UNSET_TOKEN_VARIABLE")
    async with aiohttp.ClientSession() as client:
        status, body = await _status(client, "POST", f"{agent.metrics_url}/drain", headers=AUTH)
    assert status == 403
    assert "no drain token" in body["error"]


async def test_token_file_is_read_on_each_request(shop: Shop, start_agent: StartAgent, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    agent = await start_agent(upstream=shop.url, drain_token_file=token_file)
    async with aiohttp.ClientSession() as client:
        headers = {"Authorization": "Bearer first"}
        assert (await _status(client, "POST", f"{agent.metrics_url}/drain", headers=headers))[0] == 200
        token_file.write_text("second")
        assert (await _status(client, "DELETE", f"{agent.metrics_url}/drain", headers=headers))[0] == 401
        headers = {"Authorization": "Bearer second"}
        status, state = await _status(client, "DELETE", f"{agent.metrics_url}/drain", headers=headers)
    assert status == 200
    assert state["draining"] is False


async def test_drain_serves_known_sessions_refuses_new_users_and_drops_nothing_in_flight(
    proxy: RunningAgent, shop: Shop, clock: FakeClock
) -> None:
    users = [user_client() for _ in range(12)]
    try:
        for i, user in enumerate(users):
            async with user.post(f"{proxy.url}/login", json={"user": f"u{i}"}) as r:
                assert r.status == 200

        async def slow(user: aiohttp.ClientSession) -> int:
            async with user.get(f"{proxy.url}/slow?ms=400") as r:
                await r.read()
                return r.status

        in_flight = [asyncio.ensure_future(slow(u)) for u in users] + [asyncio.ensure_future(slow(u)) for u in users]
        await asyncio.sleep(0.1)  # all of them are now inside the shop

        async with aiohttp.ClientSession() as operator:
            status, report = await _status(operator, "POST", f"{proxy.metrics_url}/drain", headers=AUTH)
            assert status == 200
            assert report["draining"] is True
            assert report["active_sessions"] == 12
            async with operator.get(f"{proxy.metrics_url}/readyz") as r:
                assert r.status == 503
            assert await proxy.metric("webapp_draining") == 1

            # A new, sessionless user is told to go elsewhere, clearly.
            async with aiohttp.ClientSession() as newcomer, newcomer.get(f"{proxy.url}/") as r:
                assert r.status == 503
                assert r.headers["Retry-After"] == "5"
                assert "draining" in await r.text()
            # So is a cookie the agent does not know (a session that does not live here).
            stranger_cookie = {"Cookie": "JSESSIONID=NOTHERE"}
            async with (
                aiohttp.ClientSession() as stranger,
                stranger.get(f"{proxy.url}/cart", headers=stranger_cookie) as r,
            ):
                assert r.status == 503

            # Known sessions keep shopping, including checkout, while the slow requests finish.
            for user in users:
                async with user.post(f"{proxy.url}/cart", json={"product": "1"}) as r:
                    assert r.status == 200
            async with users[0].post(f"{proxy.url}/checkout") as r:
                assert r.status == 200
                assert "order" in await r.json()

            assert await asyncio.gather(*in_flight) == [200] * len(in_flight)

            # Users leave (log out or idle out): the operator watches the count fall to zero.
            for user in users[:6]:
                async with user.post(f"{proxy.url}/logout") as r:
                    assert r.status == 200
            _, report = await _status(operator, "GET", f"{proxy.metrics_url}/drain")
            assert report["active_sessions"] == 6 == await shop.live_sessions()
            clock.advance(61)
            assert await proxy.metric("webapp_active_sessions") == 0 == await shop.live_sessions()

            # Cancelling the drain takes users again.
            status, report = await _status(operator, "DELETE", f"{proxy.metrics_url}/drain", headers=AUTH)
            assert status == 200
            assert report["draining"] is False
            async with operator.get(f"{proxy.metrics_url}/readyz") as r:
                assert r.status == 200
            async with operator.get(f"{proxy.url}/") as r:
                assert r.status == 200
    finally:
        await asyncio.gather(*(u.close() for u in users))


async def test_readyz_fails_when_the_application_is_down(start_agent: StartAgent) -> None:
    agent = await start_agent(upstream="http://127.0.0.1:9")
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{agent.metrics_url}/readyz") as r:
            assert r.status == 503
            assert "does not accept connections" in (await r.json())["reason"]
        async with client.get(f"{agent.metrics_url}/healthz") as r:
            assert r.status == 200


# ---------------------------------------------------------------- drain modes


async def _drain(
    client: aiohttp.ClientSession, agent: RunningAgent, method: str = "POST", **kwargs: Any
) -> tuple[int, Any]:
    headers = kwargs.pop("headers", AUTH)
    async with client.request(method, f"{agent.metrics_url}/drain", headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def _ready(client: aiohttp.ClientSession, agent: RunningAgent) -> int:
    async with client.get(f"{agent.metrics_url}/readyz") as response:
        return response.status


async def test_every_drain_answer_carries_the_mode_and_the_supported_modes(proxy: RunningAgent) -> None:
    async with aiohttp.ClientSession() as client:
        status, report = await _drain(client, proxy, "GET")
        assert (status, report["draining"], report["mode"]) == (200, False, None)
        assert report["modes"] == ["Readiness", "RefuseNewSessions"]
        # no body: Readiness, as before modes existed
        status, report = await _drain(client, proxy)
        assert (status, report["draining"], report["mode"]) == (200, True, "Readiness")
        assert report["modes"] == ["Readiness", "RefuseNewSessions"]
        since = report["since"]
        assert await _ready(client, proxy) == 503
        # switching the mode of a drain in progress keeps its start
        status, report = await _drain(client, proxy, json={"mode": "RefuseNewSessions"})
        assert (status, report["mode"], report["since"]) == (200, "RefuseNewSessions", since)
        assert await _ready(client, proxy) == 200
        # repeating it is a no-op (the operator re-confirms every round)
        status, report = await _drain(client, proxy, json={"mode": "RefuseNewSessions"})
        assert (status, report["mode"], report["since"]) == (200, "RefuseNewSessions", since)
        # the query works too, and switches back
        status, report = await _drain(client, proxy, params={"mode": "Readiness"})
        assert (status, report["mode"], report["since"]) == (200, "Readiness", since)
        assert await _ready(client, proxy) == 503
        status, report = await _drain(client, proxy, "GET")
        assert report["mode"] == "Readiness"
        # errors carry them as well
        status, report = await _drain(client, proxy, json={"mode": "Sideways"})
        assert (status, report["mode"], report["modes"]) == (400, "Readiness", ["Readiness", "RefuseNewSessions"])
        status, report = await _drain(client, proxy, "DELETE")
        assert (status, report["draining"], report["mode"], report["since"]) == (200, False, None, None)
        assert report["modes"] == ["Readiness", "RefuseNewSessions"]
        assert await _ready(client, proxy) == 200
        # a first drain can start directly in RefuseNewSessions
        status, report = await _drain(client, proxy, params={"mode": "RefuseNewSessions"})
        assert (status, report["draining"], report["mode"]) == (200, True, "RefuseNewSessions")
        assert await _ready(client, proxy) == 200


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        pytest.param({"json": {"mode": "Sideways"}}, "unknown drain mode 'Sideways'", id="unknown-in-body"),
        pytest.param({"params": {"mode": "readiness"}}, "unknown drain mode 'readiness'", id="case-matters"),
        pytest.param({"params": {"mode": ""}}, "unknown drain mode ''", id="empty-query"),
        pytest.param({"json": {"mode": 1}}, "the drain mode must be", id="not-a-string"),
        pytest.param({"data": b"{not json"}, "JSON object", id="not-json"),
        pytest.param({"json": ["Readiness"]}, "JSON object", id="not-an-object"),
        pytest.param({"data": b" " * 5000}, "larger than", id="too-large"),
        pytest.param(
            {"json": {"mode": "Readiness"}, "params": {"mode": "RefuseNewSessions"}}, "query asks", id="conflict"
        ),
    ],
)
async def test_a_bad_drain_mode_is_a_400_naming_the_modes(
    proxy: RunningAgent, kwargs: dict[str, Any], problem: str
) -> None:
    async with aiohttp.ClientSession() as client:
        status, body = await _drain(client, proxy, **kwargs)
        assert status == 400
        assert problem in body["error"]
        if "mode" in problem:
            assert "'Readiness'" in body["error"]
            assert "'RefuseNewSessions'" in body["error"]
        _, report = await _drain(client, proxy, "GET")
    assert report["draining"] is False


async def test_drain_mode_agreeing_in_body_and_query_and_empty_json_body(proxy: RunningAgent) -> None:
    async with aiohttp.ClientSession() as client:
        both = {"json": {"mode": "RefuseNewSessions"}, "params": {"mode": "RefuseNewSessions"}}
        assert (await _drain(client, proxy, **both))[1]["mode"] == "RefuseNewSessions"
        await _drain(client, proxy, "DELETE")
        assert (await _drain(client, proxy, json={}))[1]["mode"] == "Readiness"
        assert (await _drain(client, proxy, json={"mode": None}))[1]["mode"] == "Readiness"


async def test_authorization_is_checked_before_the_mode(proxy: RunningAgent) -> None:
    async with aiohttp.ClientSession() as client:
        status, body = await _drain(client, proxy, headers={"Authorization": "Bearer wrong"}, json={"mode": "?"})
        assert status == 401
        assert body["mode"] is None
        assert body["modes"] == ["Readiness", "RefuseNewSessions"]


@pytest.mark.parametrize(
    ("source", "settings", "words"),
    [
        pytest.param("connections", {"app_port": 1}, "counts TCP connections", id="connections"),
        pytest.param("tomcat", {"tomcat_manager_url": "http://127.0.0.1:9/manager/text"}, "Tomcat", id="tomcat"),
        pytest.param("push", {}, "told the count by the application", id="push"),
    ],
)
async def test_sources_outside_the_request_path_refuse_refuse_new_sessions_with_409(
    start_agent: StartAgent, source: str, settings: dict[str, Any], words: str
) -> None:
    agent = await start_agent(source=source, drain_token_env="TEST_DRAIN_TOKEN", **settings)
    async with aiohttp.ClientSession() as client:
        status, report = await _drain(client, agent, "GET")
        assert (status, report["mode"], report["modes"]) == (200, None, ["Readiness"])
        status, body = await _drain(client, agent, json={"mode": "RefuseNewSessions"})
        assert status == 409
        assert body["modes"] == ["Readiness"]
        assert words in body["error"]
        assert f"the {source} source" in body["error"]
        assert "cannot refuse only new sessions; drain with mode Readiness or run the proxy source" in body["error"]
        assert (await _drain(client, agent, "GET"))[1]["draining"] is False
        assert await agent.metric("webapp_drain_modes_supported", mode="Readiness") == 1
        assert await agent.metric("webapp_drain_modes_supported", mode="RefuseNewSessions") == 0
        # Readiness works, and a switch to the unsupported mode leaves it draining as it was
        status, report = await _drain(client, agent)
        assert (status, report["draining"], report["mode"]) == (200, True, "Readiness")
        assert (await _drain(client, agent, params={"mode": "RefuseNewSessions"}))[0] == 409
        status, report = await _drain(client, agent, "GET")
        assert (report["draining"], report["mode"]) == (True, "Readiness")
        async with client.get(f"{agent.metrics_url}/readyz") as r:
            assert r.status == 503


async def test_refuse_new_sessions_stays_ready_serves_held_sessions_and_closes_on_newcomers(
    proxy: RunningAgent, shop: Shop
) -> None:
    users = [user_client() for _ in range(3)]
    try:
        for i, user in enumerate(users):
            async with user.post(f"{proxy.url}/login", json={"user": f"u{i}"}) as r:
                assert r.status == 200
        async with aiohttp.ClientSession() as operator:
            status, report = await _drain(operator, proxy, json={"mode": "RefuseNewSessions"})
            assert (status, report["mode"], report["active_sessions"]) == (200, "RefuseNewSessions", 3)
            async with operator.get(f"{proxy.metrics_url}/readyz") as r:
                assert r.status == 200
                assert (await r.json())["ready"] is True
            assert await proxy.metric("webapp_draining") == 1
            assert await proxy.metric("webapp_drain_mode", mode="RefuseNewSessions") == 1
            assert await proxy.metric("webapp_drain_mode", mode="Readiness") == 0
            # every request of a held session is served, logout included
            for user in users:
                for _ in range(3):
                    async with user.post(f"{proxy.url}/cart", json={"product": "1"}) as r:
                        assert r.status == 200
            async with users[0].post(f"{proxy.url}/checkout") as r:
                assert r.status == 200
            async with users[2].post(f"{proxy.url}/logout") as r:
                assert r.status == 200
            # no session, or one that does not live here: 503, Retry-After, Connection: close
            for cookie in ("", "JSESSIONID=NOTHERE; other=1"):
                head = b"GET /cart HTTP/1.1\r\nHost: shop\r\n" + (f"Cookie: {cookie}\r\n".encode() if cookie else b"")
                answer = await raw_exchange(int(proxy.url.rsplit(":", 1)[1]), head + b"\r\n")
                status_line, _, rest = answer.partition(b"\r\n")
                assert status_line == b"HTTP/1.1 503 Service Unavailable"
                assert b"\r\nConnection: close\r\n" in b"\r\n" + rest
                assert b"\r\nRetry-After: 5\r\n" in b"\r\n" + rest
                assert answer.count(b"HTTP/1.1") == 1  # and the connection was closed after it
            # the logged-out user is a newcomer now
            async with users[2].get(f"{proxy.url}/cart") as r:
                assert r.status == 503
            assert await proxy.metric("webapp_proxy_rejected_total", reason="draining") == 3
            assert await shop.live_sessions() == 2
            _, report = await _drain(operator, proxy, "DELETE")
            assert await proxy.metric("webapp_drain_mode", mode="RefuseNewSessions") == 0
            async with aiohttp.ClientSession() as newcomer, newcomer.get(f"{proxy.url}/") as r:
                assert r.status == 200
    finally:
        await asyncio.gather(*(u.close() for u in users))


async def test_drain_mode_metrics_always_export_both_modes(proxy: RunningAgent) -> None:
    for mode in ("Readiness", "RefuseNewSessions"):
        assert await proxy.metric("webapp_drain_mode", mode=mode) == 0
        assert await proxy.metric("webapp_drain_modes_supported", mode=mode) == 1
    assert await proxy.metric("webapp_draining") == 0
    async with aiohttp.ClientSession() as client:
        await _drain(client, proxy)
    assert await proxy.metric("webapp_drain_mode", mode="Readiness") == 1
    assert await proxy.metric("webapp_drain_mode", mode="RefuseNewSessions") == 0


async def test_drain_mode_changes_are_logged(proxy: RunningAgent, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="session_agent.control")
    async with aiohttp.ClientSession() as client:
        await _drain(client, proxy)
        await _drain(client, proxy)  # unchanged: nothing logged
        await _drain(client, proxy, json={"mode": "RefuseNewSessions"})
        await _drain(client, proxy, "DELETE")
    logged = [(r.getMessage(), getattr(r, "fields", {})) for r in caplog.records if r.name == "session_agent.control"]
    assert logged == [
        ("drain started", {"mode": "Readiness", "active_sessions": 0}),
        ("drain mode changed", {"mode": "RefuseNewSessions", "active_sessions": 0, "previous_mode": "Readiness"}),
        ("drain cancelled", {"previous_mode": "RefuseNewSessions"}),
    ]


def test_drain_state_start_switch_cancel() -> None:
    state = DrainState()
    assert state.ready
    assert state.start() == "started"
    assert (state.draining, state.mode, state.ready) == (True, "Readiness", False)
    since = state.since
    assert state.start("Readiness") == "unchanged"
    assert state.start("RefuseNewSessions") == "switched"
    assert (state.draining, state.mode, state.ready, state.since) == (True, "RefuseNewSessions", True, since)
    with pytest.raises(ValueError, match="unknown drain mode"):
        state.start("Sideways")
    assert state.mode == "RefuseNewSessions"
    assert state.cancel()
    assert (state.draining, state.mode, state.since, state.ready) == (False, None, None, True)
    assert not state.cancel()


# ---------------------------------------------------------------- the embedded middleware


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    headers = [("Content-Type", "text/plain")]
    if path.startswith("/login/"):
        headers.append(("Set-Cookie", f"sessionid={path.rsplit('/', 1)[1]}; Path=/"))
    start_response("200 OK", headers)
    return [b"ok"]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


async def test_wsgi_middleware_learns_the_drain_from_its_push_and_refuses_newcomers(
    start_agent: StartAgent, clock: FakeClock
) -> None:
    agent = await start_agent(source="push", drain_token_env="TEST_DRAIN_TOKEN")
    app = SessionCountingMiddleware(_wsgi_app, cookie_names=["sessionid"], idle_timeout=60, clock=clock)
    reporter = app.reporter(f"{agent.metrics_url}/push")
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{base}/login/a") as r:
                assert r.status == 200
            assert await asyncio.to_thread(reporter.push_once)
            assert app.drain.mode is None
            assert (await _drain(client, agent))[1]["mode"] == "Readiness"
            async with client.get(f"{base}/page") as r:
                assert r.status == 200  # not learned yet: the next push tells
            assert await asyncio.to_thread(reporter.push_once)
            assert app.drain.mode == "Readiness"
            async with client.get(f"{base}/page", headers={"Cookie": "sessionid=a"}) as r:
                assert r.status == 200
            for cookie in ({}, {"Cookie": "sessionid=elsewhere"}):
                async with client.get(f"{base}/login/b", headers=cookie) as r:
                    assert r.status == 503
                    assert r.headers["Retry-After"] == "5"
                    assert "draining" in await r.text()
            assert app.refused == 2
            assert app.tracker.active() == 1  # no session was started by the refused login
            await _drain(client, agent, "DELETE")
            assert await asyncio.to_thread(reporter.push_once)
            assert app.drain.mode is None
            async with client.get(f"{base}/login/b") as r:
                assert r.status == 200
            assert app.tracker.active() == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_asgi_middleware_refuses_newcomers_while_the_agent_drains(
    start_agent: StartAgent, clock: FakeClock
) -> None:
    agent = await start_agent(source="push", drain_token_env="TEST_DRAIN_TOKEN")
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        headers = []
        if scope["path"].startswith("/login/"):
            headers.append((b"set-cookie", b"connect.sid=" + scope["path"].rsplit("/", 1)[1].encode() + b"; Path=/"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = SessionCountingASGIMiddleware(
        app, idle_timeout=60, clock=clock, push_url=f"{agent.metrics_url}/push", push_interval=3600
    )
    assert middleware.reporter is not None
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def call(path: str, cookie: bytes = b"", kind: str = "http") -> list[Any]:
        sent.clear()
        scope = {"type": kind, "path": path, "headers": [(b"cookie", cookie)] if cookie else []}
        await middleware(scope, receive, send)
        return list(sent)

    try:
        await call("/login/x")
        async with aiohttp.ClientSession() as client:
            await _drain(client, agent)
        assert await asyncio.to_thread(middleware.reporter.push_once)
        assert middleware.drain.mode == "Readiness"
        assert (await call("/cart", b"connect.sid=x"))[0]["status"] == 200
        refused = await call("/login/y")
        assert refused[0]["status"] == 503
        headers = dict(refused[0]["headers"])
        assert (headers[b"connection"], headers[b"retry-after"]) == (b"close", b"5")
        assert b"draining" in refused[1]["body"]
        assert await call("/ws", kind="websocket") == [{"type": "websocket.close", "code": 1013}]
        assert reached == ["/login/x", "/cart"]
        assert (middleware.refused, middleware.tracker.active()) == (2, 1)
        # set by hand (an application that drains without an agent) it works the same
        middleware.drain.mode = None
        assert (await call("/login/y"))[0]["status"] == 200
        middleware.drain.mode = "RefuseNewSessions"
        assert (await call("/login/z"))[0]["status"] == 503
    finally:
        await middleware.aclose()


def test_agent_drain_learns_only_well_formed_answers() -> None:
    drain = AgentDrain()
    for answer in ({"accepted": True}, [], None, {"draining": "yes", "mode": "Readiness"}):
        drain.learn(answer)
        assert drain.mode is None
    drain.learn({"draining": True, "mode": "RefuseNewSessions"})
    assert drain.mode == "RefuseNewSessions"
    drain.learn({"draining": True, "mode": "Sideways"})  # an unknown mode keeps what it knew
    assert drain.mode == "RefuseNewSessions"
    drain.learn({"draining": False, "mode": None})
    assert drain.mode is None
