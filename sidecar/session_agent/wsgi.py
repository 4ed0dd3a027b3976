"""WSGI middleware: count the sessions of a Python web app from inside its process.

    app = SessionCountingMiddleware(app, idle_timeout=1800)
    app.reporter("http://127.0.0.1:9100/push").start_thread()

WSGI servers call the app from many threads, so the tracker is guarded by a lock.

While the agent drains (learned from the answer to each push, so up to one push interval late), a
request that carries no session held here is answered 503 with Retry-After instead of reaching the
app, as the proxy does. PEP 3333 forbids an application to set hop-by-hop headers, so the answer has
no `Connection: close`: whether the connection stays open is the WSGI server's choice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from session_agent import cookies, exchange
from session_agent.reporter import AgentDrain, PushReporter
from session_agent.tracker import Clock, SessionKey, SessionTracker

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

DRAINING_BODY = b"this server is draining; retry to reach another one\n"


class SessionCountingMiddleware:
    def __init__(
        self,
        app: WSGIApp,
        *,
        cookie_names: Iterable[str] = cookies.DEFAULT_COOKIE_NAMES,
        idle_timeout: float = 1800.0,
        max_sessions: int = 100_000,
        retry_after: int = 5,
        clock: Clock = time.monotonic,
    ) -> None:
        self.app = app
        self.names = frozenset(name.encode() for name in cookie_names)
        self.tracker = SessionTracker(idle_timeout=idle_timeout, max_sessions=max_sessions, clock=clock)
        self.lock = threading.Lock()
        self.requests = 0
        self.refused = 0
        """Requests answered 503 while draining."""
        self.retry_after = retry_after
        self.drain = AgentDrain()
        """The agent's drain state, updated by the reporter; set `drain.mode` by hand to drain without one."""

    def reporter(self, push_url: str, *, interval: float = 5.0) -> PushReporter:
        """A reporter that pushes this middleware's count to the agent's push source."""
        return PushReporter(
            push_url,
            self.tracker,
            interval=interval,
            lock=self.lock,
            requests=lambda: self.requests,
            drain=self.drain,
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        cookie = environ.get("HTTP_COOKIE")
        cookie_headers = [cookie.encode("latin-1")] if cookie else []
        presented_early: list[tuple[bytes, SessionKey]] | None = None
        if self.drain.mode is not None:  # only while draining: a held session's request pays one lookup
            with self.lock:
                presented_early = exchange.presented_keys(self.tracker, cookie_headers, self.names)
                refuse = not any(self.tracker.knows(key) for _, key in presented_early)
                if refuse:
                    self.requests += 1
                    self.refused += 1
            if refuse:
                return self._refuse(start_response)

        def counting_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            set_cookies = [value.encode("latin-1") for name, value in headers if name.lower() == "set-cookie"]
            with self.lock:
                self.requests += 1
                presented = presented_early
                if presented is None:
                    presented = exchange.presented_keys(self.tracker, cookie_headers, self.names)
                exchange.observe(self.tracker, presented, set_cookies, self.names)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, counting_start_response)

    def _refuse(self, start_response: StartResponse) -> Iterable[bytes]:
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(DRAINING_BODY))),
            ("Retry-After", str(self.retry_after)),
        ]
        start_response("503 Service Unavailable", headers)
        return [DRAINING_BODY]
