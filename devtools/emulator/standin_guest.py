"""A minimal guest for tests and for machines without the real web app: the session agent's HTTP
surface in one small process.

    python -m emulator.standin_guest --ip IP [--app-port 8080] [--agent-port 9100] [--sessions N]

`GET /` on the app port answers with the VM name; the agent port serves `/metrics`
(`webapp_active_sessions N`), `/readyz` (503 while draining) and `POST /drain` / `DELETE /drain`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence

from aiohttp import web


class StandinGuest:
    def __init__(self, sessions: int) -> None:
        self.sessions = sessions
        self.draining = False
        self.vm = os.environ.get("VM_NAME", "unknown")

    async def index(self, request: web.Request) -> web.Response:
        return web.json_response({"vm": self.vm, "ip": os.environ.get("VM_IP")})

    async def metrics(self, request: web.Request) -> web.Response:
        body = (
            "# HELP webapp_active_sessions Active user sessions.\n"
            "# TYPE webapp_active_sessions gauge\n"
            f"webapp_active_sessions {self.sessions}\n"
            f"webapp_draining {int(self.draining)}\n"
        )
        return web.Response(text=body, content_type="text/plain")

    async def readyz(self, request: web.Request) -> web.Response:
        if self.draining:
            return web.json_response({"ready": False, "reason": "draining"}, status=503)
        return web.json_response({"ready": True})

    async def drain(self, request: web.Request) -> web.Response:
        self.draining = request.method == "POST"
        return web.json_response({"draining": self.draining})


async def serve(ip: str, app_port: int, agent_port: int, sessions: int) -> None:
    guest = StandinGuest(sessions)
    app = web.Application()
    app.add_routes([web.get("/", guest.index)])
    agent = web.Application()
    agent.add_routes(
        [
            web.get("/metrics", guest.metrics),
            web.get("/readyz", guest.readyz),
            web.get("/healthz", guest.readyz),
            web.post("/drain", guest.drain),
            web.delete("/drain", guest.drain),
        ]
    )
    runners = [web.AppRunner(app, access_log=None), web.AppRunner(agent, access_log=None)]
    for runner in runners:
        await runner.setup()
    await web.TCPSite(runners[0], ip, app_port).start()
    await web.TCPSite(runners[1], ip, agent_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="standin-guest", description=__doc__.splitlines()[0])
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--app-port", type=int, default=8080)
    p.add_argument("--agent-port", type=int, default=9100)
    p.add_argument("--sessions", type=int, default=0)
    args = p.parse_args(argv)
    asyncio.run(serve(args.ip, args.app_port, args.agent_port, args.sessions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
