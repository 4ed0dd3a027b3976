"""The application reports its own session count: `POST /push` on the metrics listener.

For applications that know their sessions best (a session registry, a framework hook, or the WSGI/ASGI
middleware of this package). Bodies are JSON, e.g. `{"active_sessions": 12, "started": 40}`, where
every field but active_sessions is an optional cumulative counter; a bare number is accepted too.

The answer to a push carries the agent's drain state (`draining`, `mode`), so an embedded middleware
(session_agent.wsgi / .asgi) learns of a drain at its next push and refuses sessionless requests itself.
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

from aiohttp import web

from session_agent.drain import READINESS, DrainState
from session_agent.sources.base import SessionStats
from session_agent.tracker import Clock

MAX_BODY = 4096


class PushError(Exception):
    """The application has not reported recently enough for its count to be trusted."""


class PushSource:
    name = "push"
    drain_modes: tuple[str, ...] = (READINESS,)
    drain_limitation = "is told the count by the application and never sees a request"

    def __init__(
        self,
        *,
        allow_remote: bool = False,
        stale_after: float | None = None,
        clock: Clock = time.monotonic,
        drain: DrainState | None = None,
    ) -> None:
        self.allow_remote = allow_remote
        self.drain = drain if drain is not None else DrainState()
        self.stale_after = stale_after
        self._clock = clock
        self._stats = SessionStats(active=0)
        self._last_push: float | None = None
        self._started_at = clock()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/push", self.receive)]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def refresh(self) -> None:
        if self.stale_after is None:
            return
        last = self._last_push if self._last_push is not None else self._started_at
        if self._clock() - last > self.stale_after:
            raise PushError(f"no count pushed for more than {self.stale_after:g} s")

    def stats(self) -> SessionStats:
        return self._stats

    async def unready_reason(self) -> str | None:
        return None

    def _allowed(self, remote: str | None) -> bool:
        if self.allow_remote:
            return True
        try:
            return remote is not None and ipaddress.ip_address(remote).is_loopback
        except ValueError:
            return False

    async def receive(self, request: web.Request) -> web.Response:
        if not self._allowed(request.remote):
            return web.json_response({"error": "pushes are accepted from loopback only"}, status=403)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"error": "body too large"}, status=413)
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            self._stats = parse_push(raw)
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)
        self._last_push = self._clock()
        answer = {
            "accepted": True,
            "active_sessions": self._stats.active,
            "draining": self.drain.draining,
            "mode": self.drain.mode,
        }
        return web.json_response(answer)


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field} must be a non-negative integer")
    return value


def parse_push(raw: bytes) -> SessionStats:
    """A pushed body as a reading; raises ValueError with a message for the client."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError('body must be JSON: {"active_sessions": N} or a bare number') from None
    if not isinstance(body, dict):
        body = {"active_sessions": body}
    if "active_sessions" not in body:
        raise ValueError("active_sessions is required")

    def counter(name: str) -> int | None:
        value = body.get(name)
        return None if value is None else _count(value, name)

    return SessionStats(
        active=_count(body["active_sessions"], "active_sessions"),
        started=counter("started"),
        expired=counter("expired"),
        logged_out=counter("logged_out"),
        evicted=counter("evicted"),
        requests=counter("requests"),
    )
