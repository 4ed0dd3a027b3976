"""Real servers on 127.0.0.1 for the session agent's tests: the sample shop, agents, a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import uvloop
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from session_agent.agent import Agent, AgentConfig
from session_agent.sources.proxy import ProxySource
from webshop.app import build_app


@pytest.hookimpl(optionalhook=True)
def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every agent test runs on both loops: uvloop in production, plain asyncio where it is missing."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


class FakeClock:
    """A monotonic clock the test moves by hand, shared by the shop and the agent."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Shop:
    url: str
    port: int

    async def live_sessions(self) -> int:
        async with aiohttp.ClientSession() as client, client.get(f"{self.url}/stats") as response:
            body = await response.json()
        return int(body["active_sessions"])


@dataclass
class RunningAgent:
    agent: Agent
    url: str
    metrics_url: str

    async def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of /metrics, read over HTTP like Prometheus does."""
        async with aiohttp.ClientSession() as client, client.get(f"{self.metrics_url}/metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        raise KeyError(f"{name}{labels} not exported")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def serve_app(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@pytest.fixture
async def shop(clock: FakeClock) -> AsyncIterator[Shop]:
    runner, port = await serve_app(build_app(session_timeout=60.0, clock=clock))
    yield Shop(url=f"http://127.0.0.1:{port}", port=port)
    await runner.cleanup()


StartAgent = Callable[..., Awaitable[RunningAgent]]


@pytest.fixture
async def start_agent(clock: FakeClock) -> AsyncIterator[StartAgent]:
    started: list[Agent] = []

    async def start(**overrides: Any) -> RunningAgent:
        settings: dict[str, Any] = {
            "listen_host": "127.0.0.1",
            "listen_port": 0,
            "metrics_host": "127.0.0.1",
            "metrics_port": 0,
            "shutdown_grace": 2.0,
            "idle_timeout": 60.0,
        }
        settings.update(overrides)
        agent = Agent(AgentConfig(**settings), clock=clock)
        await agent.start()
        started.append(agent)
        metrics_port = agent.metrics_address[1]
        url = ""
        if isinstance(agent.source, ProxySource):
            url = f"http://127.0.0.1:{agent.source.address[1]}"
        return RunningAgent(agent=agent, url=url, metrics_url=f"http://127.0.0.1:{metrics_port}")

    yield start
    for agent in started:
        await agent.stop()


@pytest.fixture
async def proxy(shop: Shop, start_agent: StartAgent) -> RunningAgent:
    """An agent proxying the shop, with a drain token in the environment."""
    return await start_agent(upstream=shop.url, drain_token_env="TEST_DRAIN_TOKEN")


def user_client() -> aiohttp.ClientSession:
    """A browser-like client: its own cookie jar (unsafe=True accepts cookies from IP hosts)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def raw_exchange(port: int, payload: bytes, *, read_timeout: float = 5.0) -> bytes:
    """Send raw bytes to 127.0.0.1:port and read until the server closes (or the timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(read_timeout):
            return await reader.read(-1)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
