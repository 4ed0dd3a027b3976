"""ASGI middleware: count the sessions of a Python async web app from inside its process.

    app = SessionCountingASGIMiddleware(app, idle_timeout=1800, push_url="http://127.0.0.1:9100/push")

With `push_url`, the count is pushed to the agent's push source from a task started on the first
request (not every ASGI server sends lifespan events).

While the agent drains (learned from the answer to each push, so up to one push interval late), a
request that carries no session held here is answered 503 with Retry-After and `Connection: close`
instead of reaching the app, as the proxy does; such a WebSocket handshake is closed with code 1013
(try again later), which the server turns into a 403.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from session_agent import cookies, exchange
from session_agent.reporter import AgentDrain, PushReporter
from session_agent.tracker import Clock, SessionTracker

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DRAINING_BODY = b"this server is draining; retry to reach another one\n"


class SessionCountingASGIMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        cookie_names: Iterable[str] = cookies.DEFAULT_COOKIE_NAMES,
        idle_timeout: float = 1800.0,
        max_sessions: int = 100_000,
        push_url: str | None = None,
        push_interval: float = 5.0,
        retry_after: int = 5,
        clock: Clock = time.monotonic,
    ) -> None:
        self.app = app
        self.names = frozenset(name.encode() for name in cookie_names)
        self.tracker = SessionTracker(idle_timeout=idle_timeout, max_sessions=max_sessions, clock=clock)
        self.requests = 0
        self.refused = 0
        """Requests (and WebSocket handshakes) refused while draining."""
        self.retry_after = retry_after
        self.drain = AgentDrain()
        """The agent's drain state, updated by the reporter; set `drain.mode` by hand to drain without one."""
        self.reporter = (
            PushReporter(
                push_url, self.tracker, interval=push_interval, requests=lambda: self.requests, drain=self.drain
            )
            if push_url
            else None
        )
        self._push_task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.reporter is not None and self._push_task is None:
            self._push_task = asyncio.get_running_loop().create_task(self.reporter.run())
        cookie_headers = [value for name, value in scope.get("headers", ()) if name.lower() == b"cookie"]
        presented = exchange.presented_keys(self.tracker, cookie_headers, self.names)
        if self.drain.mode is not None and not any(self.tracker.knows(key) for _, key in presented):
            self.requests += 1
            self.refused += 1
            await self._refuse(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                set_cookies = [v for n, v in message.get("headers", ()) if n.lower() == b"set-cookie"]
                self.requests += 1
                exchange.observe(self.tracker, presented, set_cookies, self.names)
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1013})
            return
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(DRAINING_BODY)).encode()),
            (b"retry-after", str(self.retry_after).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": DRAINING_BODY})

    async def aclose(self) -> None:
        """Stop pushing (for tests and orderly shutdown)."""
        if self._push_task is not None:
            self._push_task.cancel()
            await asyncio.gather(self._push_task, return_exceptions=True)
            self._push_task = None
