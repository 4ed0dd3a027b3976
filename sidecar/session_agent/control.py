"""The metrics listener: /metrics, /healthz, /readyz and /drain (plus /push for the push source).

It is separate from the proxied port so the load balancer never routes users to it and the operator
reaches it on a fixed port whatever the application listens on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from session_agent.drain import DrainState, DrainToken
from session_agent.metrics import SessionCollector, build_registry
from session_agent.sources.base import SessionSource

log = logging.getLogger(__name__)


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
        if self.drain.draining:
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
        }

    async def drain_state(self, request: web.Request) -> web.Response:
        return web.json_response(await self._report())

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        problem = self.token.check(request.headers.get("Authorization"))
        if problem is None:
            return None
        status = 403 if "disabled" in problem else 401
        log.warning("drain request refused", extra={"fields": {"remote": request.remote, "status": status}})
        return web.json_response({"error": problem}, status=status, headers={"WWW-Authenticate": "Bearer"})

    async def drain_start(self, request: web.Request) -> web.Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        started = self.drain.start()
        report = await self._report()
        if started:
            log.info("drain started", extra={"fields": {"active_sessions": report["active_sessions"]}})
        return web.json_response(report)

    async def drain_cancel(self, request: web.Request) -> web.Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        if self.drain.cancel():
            log.info("drain cancelled")
        return web.json_response(await self._report())
