"""The metrics listener: /metrics, /healthz, /readyz and /drain (plus /push for the push source).

It is separate from the proxied port so the load balancer never routes users to it and the operator
reaches it on a fixed port whatever the application listens on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from session_agent.drain import DEFAULT_DRAIN_MODE, DRAIN_MODES, READINESS, REFUSE_NEW_SESSIONS, DrainState, DrainToken
from session_agent.metrics import SessionCollector, build_registry
from session_agent.sources.base import SessionSource

log = logging.getLogger(__name__)

MAX_DRAIN_BODY = 4096

_MODE_NEEDS = {
    READINESS: "drain through readiness",
    REFUSE_NEW_SESSIONS: "refuse only new sessions",
}
_UNKNOWN_MODE = (
    f"the drain mode must be {READINESS!r} (/readyz fails, the VM leaves the load balancer) or "
    f"{REFUSE_NEW_SESSIONS!r} (/readyz stays ready, requests without a session held here get 503)"
)


class DrainRequestError(Exception):
    """A drain request the agent cannot carry out; `status` is the HTTP answer (400 or 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlServer:
    def __init__(
        self,
        *,
        source: SessionSource,
        drain: DrainState,
        token: DrainToken,
        extra_routes: Iterable[web.RouteDef] = (),
    ) -> None:
        self.source = source
        self.drain = drain
        self.token = token
        self.collector = SessionCollector(source, drain)
        self.registry = build_registry(self.collector)
        self.app = web.Application()
        self.app.add_routes(
            [
                web.get("/metrics", self.metrics),
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/drain", self.drain_state),
                web.post("/drain", self.drain_start),
                web.delete("/drain", self.drain_cancel),
                *extra_routes,
            ]
        )

    async def refresh(self) -> None:
        """Bring the source up to date; a failed reading keeps the last value and marks the source down."""
        try:
            await self.source.refresh()
        except Exception as error:
            if self.collector.source_up:
                log.warning("session source reading failed", extra={"fields": {"error": repr(error)}})
            self.collector.source_up = False
        else:
            self.collector.source_up = True

    async def metrics(self, request: web.Request) -> web.Response:
        await self.refresh()
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"healthy": True})

    async def readyz(self, request: web.Request) -> web.Response:
        if not self.drain.ready:
            return web.json_response({"ready": False, "reason": "draining"}, status=503)
        reason = await self.source.unready_reason()
        if reason is not None:
            return web.json_response({"ready": False, "reason": reason}, status=503)
        return web.json_response({"ready": True})

    async def _report(self) -> dict[str, Any]:
        await self.refresh()
        since = self.drain.since
        return {
            "draining": self.drain.draining,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)) if since is not None else None,
            "active_sessions": self.source.stats().active,
            "source": self.source.name,
            "source_up": self.collector.source_up,
            "mode": self.drain.mode,
            "modes": list(self.source.drain_modes),
        }

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        """Every /drain answer carries the current mode and the supported ones, errors too."""
        body = {"error": message, "mode": self.drain.mode, "modes": list(self.source.drain_modes)}
        return web.json_response(body, status=status, headers=headers)

    async def drain_state(self, request: web.Request) -> web.Response:
        return web.json_response(await self._report())

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        problem = self.token.check(request.headers.get("Authorization"))
        if problem is None:
            return None
        status = 403 if "disabled" in problem else 401
        log.warning("drain request refused", extra={"fields": {"remote": request.remote, "status": status}})
        return self._error(status, problem, headers={"WWW-Authenticate": "Bearer"})

    async def _requested_mode(self, request: web.Request) -> str:
        """The mode of a POST /drain: JSON body `{"mode": ...}` or query `?mode=`, else the default."""
        from_query = request.query.get("mode")
        from_body: str | None = None
        raw = await request.content.read(MAX_DRAIN_BODY + 1) if request.body_exists else b""
        if len(raw) > MAX_DRAIN_BODY:
            raise DrainRequestError(400, f"the drain request body is larger than {MAX_DRAIN_BODY} bytes")
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            if not isinstance(body, dict):
                raise DrainRequestError(400, f'the body must be a JSON object such as {{"mode": "{READINESS}"}}')
            value = body.get("mode")
            if value is not None and not isinstance(value, str):
                raise DrainRequestError(400, _UNKNOWN_MODE)
            from_body = value
        if from_query is not None and from_body is not None and from_query != from_body:
            raise DrainRequestError(400, f"the query asks for mode {from_query!r} and the body for {from_body!r}")
        mode = from_body if from_body is not None else from_query
        if mode is None:
            return DEFAULT_DRAIN_MODE
        if mode not in DRAIN_MODES:
            raise DrainRequestError(400, f"unknown drain mode {mode!r}: {_UNKNOWN_MODE}")
        if mode not in self.source.drain_modes:
            supported = " or ".join(self.source.drain_modes)
            raise DrainRequestError(
                409,
                f"the {self.source.name} source {self.source.drain_limitation}, so it cannot {_MODE_NEEDS[mode]}; "
                f"drain with mode {supported} or run the proxy source",
            )
        return mode

    async def drain_start(self, request: web.Request) -> web.Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        try:
            mode = await self._requested_mode(request)
        except DrainRequestError as error:
            log.warning(
                "drain request rejected",
                extra={"fields": {"remote": request.remote, "status": error.status, "error": str(error)}},
            )
            return self._error(error.status, str(error))
        previous = self.drain.mode
        change = self.drain.start(mode)
        if change == "unchanged":
            return web.json_response(await self._report())
        report = await self._report()
        fields = {"mode": mode, "active_sessions": report["active_sessions"]}
        if change == "started":
            log.info("drain started", extra={"fields": fields})
        else:
            log.info("drain mode changed", extra={"fields": {**fields, "previous_mode": previous}})
        return web.json_response(report)

    async def drain_cancel(self, request: web.Request) -> web.Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        mode = self.drain.mode
        if self.drain.cancel():
            log.info("drain cancelled", extra={"fields": {"previous_mode": mode}})
        return web.json_response(await self._report())
