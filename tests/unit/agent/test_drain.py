"""Drain: readiness fails, known sessions keep being served, new users are sent elsewhere, nothing
in flight is dropped, and the operator can watch the sessions fall to zero."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.unit.agent.conftest import FakeClock, RunningAgent, Shop, StartAgent, user_client

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
