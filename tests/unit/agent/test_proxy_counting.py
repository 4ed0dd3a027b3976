"""The proxy source against the real shop, with real HTTP clients: the gauge is always the truth."""

from __future__ import annotations

import asyncio
import random

import aiohttp

from tests.unit.agent.conftest import FakeClock, RunningAgent, Shop, StartAgent, user_client

USERS = 60


async def _login(client: aiohttp.ClientSession, base: str, user: str) -> None:
    async with client.post(f"{base}/login", json={"user": user}) as response:
        assert response.status == 200


async def _shop_around(client: aiohttp.ClientSession, base: str) -> None:
    async with client.post(f"{base}/cart", json={"product": str(random.randint(1, 4)), "quantity": 1}) as r:
        assert r.status == 200
    async with client.get(f"{base}/cart") as r:
        assert r.status == 200


async def _assert_gauge_is_truth(proxy: RunningAgent, shop: Shop) -> int:
    truth = await shop.live_sessions()
    assert await proxy.metric("webapp_active_sessions") == truth
    return truth


async def test_gauge_equals_live_sessions_under_concurrent_users(
    proxy: RunningAgent, shop: Shop, clock: FakeClock
) -> None:
    clients = [user_client() for _ in range(USERS)]
    try:
        # Sessionless browsing creates no session.
        await asyncio.gather(*(c.get(f"{proxy.url}/") for c in clients[:10]))
        assert await _assert_gauge_is_truth(proxy, shop) == 0

        # Wave 1: half the users log in concurrently (sessions learned from Set-Cookie).
        await asyncio.gather(*(_login(c, proxy.url, f"u{i}") for i, c in enumerate(clients[: USERS // 2])))
        assert await _assert_gauge_is_truth(proxy, shop) == USERS // 2

        # Wave 2: everybody shops; the other half get anonymous carts (new sessions); nobody counts twice.
        await asyncio.gather(*(_shop_around(c, proxy.url) for c in clients))
        assert await _assert_gauge_is_truth(proxy, shop) == USERS

        # Anonymous users log in: the shop rotates their session id; still one session each.
        await asyncio.gather(*(_login(c, proxy.url, f"v{i}") for i, c in enumerate(clients[USERS // 2 :])))
        assert await _assert_gauge_is_truth(proxy, shop) == USERS

        # A third log out: the cleared cookie ends the session at once.
        leaving = clients[: USERS // 3]
        await asyncio.gather(*(c.post(f"{proxy.url}/logout") for c in leaving))
        assert await _assert_gauge_is_truth(proxy, shop) == USERS - len(leaving)
        assert await proxy.metric("webapp_sessions_expired_total", reason="logout") == len(leaving)

        # Half the idle timeout later the rest are alive; a few keep using the shop.
        clock.advance(40)
        active = clients[USERS // 3 : USERS // 3 + 10]
        await asyncio.gather(*(c.get(f"{proxy.url}/cart") for c in active))
        assert await _assert_gauge_is_truth(proxy, shop) == USERS - len(leaving)

        # Past the idle timeout of the others, only the active ten remain.
        clock.advance(30)
        assert await _assert_gauge_is_truth(proxy, shop) == 10
        assert await proxy.metric("webapp_sessions_expired_total", reason="idle") == USERS - len(leaving) - 10
        clock.advance(61)
        assert await _assert_gauge_is_truth(proxy, shop) == 0

        started = await proxy.metric("webapp_sessions_started_total")
        assert started == USERS  # rotation after login is not a new session
        assert await proxy.metric("webapp_requests_total") > 3 * USERS
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_cookie_presented_without_set_cookie_counts_and_expires(proxy: RunningAgent, clock: FakeClock) -> None:
    """Sessions that started before the agent (or on another path) are learned from the Cookie header."""
    async with aiohttp.ClientSession() as client:
        for sid in ("A1", "B2", "A1"):
            async with client.get(f"{proxy.url}/products/1", headers={"Cookie": f"PHPSESSID={sid}; theme=dark"}):
                pass
        async with client.get(f"{proxy.url}/products/1", headers={"Cookie": "theme=dark; other=A1"}):
            pass
    assert await proxy.metric("webapp_active_sessions") == 2
    clock.advance(59.9)
    assert await proxy.metric("webapp_active_sessions") == 2
    clock.advance(0.2)
    assert await proxy.metric("webapp_active_sessions") == 0


async def test_configured_cookie_names_only(shop: Shop, start_agent: StartAgent) -> None:
    agent = await start_agent(upstream=shop.url, cookie_names=("shopsid",))
    async with aiohttp.ClientSession() as client:
        for cookie in ("shopsid=1", "JSESSIONID=2", "shopsid=3"):
            async with client.get(f"{agent.url}/", headers={"Cookie": cookie}):
                pass
    assert await agent.metric("webapp_active_sessions") == 2


async def test_session_ids_never_reach_metrics(proxy: RunningAgent, shop: Shop) -> None:
    async with user_client() as client:
        await _login(client, proxy.url, "ann")
        session_id = next(iter(client.cookie_jar)).value
        async with aiohttp.ClientSession() as scraper, scraper.get(f"{proxy.metrics_url}/metrics") as r:
            text = await r.text()
    assert session_id
    assert session_id not in text
    assert "webapp_active_sessions" in text
