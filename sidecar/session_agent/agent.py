"""Wiring: one source, the tracker it needs, the drain state and the metrics listener."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from session_agent import cookies
from session_agent.control import ControlServer
from session_agent.drain import DrainState, DrainToken
from session_agent.sources.base import SessionSource
from session_agent.sources.connections import ConnectionsSource
from session_agent.sources.proxy import ProxyConfig, ProxySource
from session_agent.sources.push import PushSource
from session_agent.sources.tomcat import TomcatSource
from session_agent.tracker import Clock, SessionTracker

log = logging.getLogger(__name__)

SOURCES = ("proxy", "tomcat", "connections", "push")


@dataclass(frozen=True)
class AgentConfig:
    """Everything the command line sets; defaults are the documented ones."""

    source: str = "proxy"
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9100
    # proxy
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    upstream: str | None = None
    cookie_names: tuple[str, ...] = cookies.DEFAULT_COOKIE_NAMES
    idle_timeout: float = 1800.0
    max_sessions: int = 100_000
    max_header_bytes: int = 16384
    max_headers: int = 100
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    body_timeout: float = 60.0
    upstream_timeout: float = 60.0
    max_connections: int = 10_000
    retry_after: int = 5
    shutdown_grace: float = 30.0
    # drain
    drain_token_file: Path | None = None
    drain_token_env: str = "SESSION_AGENT_DRAIN_TOKEN"
    # tomcat
    tomcat_manager_url: str = "http://127.0.0.1:8080/manager/text"
    tomcat_context: str = "/"
    tomcat_command: str = "list"
    tomcat_user: str | None = None
    tomcat_password_file: Path | None = None
    # connections
    app_port: int | None = None
    proc_net: Path = field(default_factory=lambda: Path("/proc/net"))
    distinct_peers: bool = False
    # push
    push_allow_remote: bool = False
    push_stale_after: float | None = None


def _upstream_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--upstream must be an http:// URL, got {url!r}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError("--upstream is a server address: paths are forwarded unchanged, so give none")
    return parts.hostname, parts.port or 80


def _address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Agent:
    def __init__(self, config: AgentConfig, *, clock: Clock = time.monotonic) -> None:
        self.config = config
        self.drain = DrainState()
        self.tracker: SessionTracker | None = None
        self.source = self._build_source(clock)
        routes = self.source.routes() if isinstance(self.source, PushSource) else []
        self.control = ControlServer(
            source=self.source,
            drain=self.drain,
            token=DrainToken(file=config.drain_token_file, env_var=config.drain_token_env),
            extra_routes=routes,
        )
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    def _build_source(self, clock: Clock) -> SessionSource:
        c = self.config
        if c.source == "proxy":
            if c.upstream is None:
                raise ValueError("--source proxy needs --upstream")
            host, port = _upstream_address(c.upstream)
            self.tracker = SessionTracker(idle_timeout=c.idle_timeout, max_sessions=c.max_sessions, clock=clock)
            proxy_config = ProxyConfig(
                listen_host=c.listen_host,
                listen_port=c.listen_port,
                upstream_host=host,
                upstream_port=port,
                cookie_names=frozenset(name.encode() for name in c.cookie_names),
                max_header_bytes=c.max_header_bytes,
                max_headers=c.max_headers,
                header_timeout=c.header_timeout,
                keepalive_timeout=c.keepalive_timeout,
                body_timeout=c.body_timeout,
                upstream_timeout=c.upstream_timeout,
                max_connections=c.max_connections,
                retry_after=c.retry_after,
                shutdown_grace=c.shutdown_grace,
            )
            return ProxySource(proxy_config, tracker=self.tracker, drain=self.drain)
        if c.source == "tomcat":
            password = c.tomcat_password_file.read_text().strip() if c.tomcat_password_file else None
            return TomcatSource(
                manager_url=c.tomcat_manager_url,
                context_path=c.tomcat_context,
                command=c.tomcat_command,
                user=c.tomcat_user,
                password=password,
                clock=clock,
            )
        if c.source == "connections":
            if c.app_port is None:
                raise ValueError("--source connections needs --app-port")
            return ConnectionsSource(port=c.app_port, proc_net=c.proc_net, distinct_peers=c.distinct_peers)
        if c.source == "push":
            return PushSource(
                allow_remote=c.push_allow_remote, stale_after=c.push_stale_after, clock=clock, drain=self.drain
            )
        raise ValueError(f"unknown source {c.source!r}; choose one of {', '.join(SOURCES)}")

    @property
    def metrics_address(self) -> tuple[str, int]:
        assert self._runner is not None
        host, port = self._runner.addresses[0][:2]
        return str(host), int(port)

    async def start(self) -> None:
        await self.source.start()
        self._runner = web.AppRunner(self.control.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.config.metrics_host, self.config.metrics_port)
        await self._site.start()
        fields: dict[str, object] = {"source": self.source.name, "metrics": _address(self.metrics_address)}
        if isinstance(self.source, ProxySource):
            fields["listen"] = _address(self.source.address)
            fields["upstream"] = self.config.upstream
        log.info("session agent started", extra={"fields": fields})

    async def stop(self) -> None:
        """Source first (in-flight requests finish), then the metrics listener."""
        await self.source.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("session agent stopped")


async def run(config: AgentConfig) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    agent = Agent(config)
    await agent.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await agent.stop()
