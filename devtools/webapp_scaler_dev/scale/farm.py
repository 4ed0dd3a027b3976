"""The agent farm: every VM's session agent in one process, for fleets too large for a process per VM.

The light emulator (`--network served`) hands the VMs addresses of one subnet; the farm answers on all
of them at once: its listening socket lives in a network namespace of the benchmark's where the whole
subnet is local (`ip route add local SUBNET dev lo`), and the address a connection was made to says
which VM is asked. It answers as the session agent does: `/metrics` with `webapp_active_sessions`,
`/readyz`, and `POST`/`DELETE /drain`. Which VM holds an address, and of which WebAppScaling, the
emulator tells it (`--served-announce`: `POST /vms` on the control port) before the VMI reports the
address, and again when the VM stops: no scrape can reach an address the farm does not know yet, so no
VM answers a count that is not its share (a watch of the VMIs would lag behind the operator's own, and a
VM answering 0 meanwhile looks like a rise when it answers its share next round). An object's sessions
(the load plan's figure for now) are spread over its running VMs that are not draining; a draining VM
reports 0, as a drained agent whose last user has left.

Each scrape is timed; the scrapes of one object that follow each other within `ROUND_GAP_S` form one
round, written to `--rounds` as a JSON line when the next round starts (and at exit): the benchmark's
scrape-round durations, decision latencies and restart convergence come from there.

    python -m webapp_scaler_dev.scale.farm --plan plan.json --rounds rounds.jsonl \
        --netns NAME --control-port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from webapp_scaler_dev.scale.plan import LoadPlan, split

log = logging.getLogger("agent-farm")

LABEL_SCALING = "webappscaler.io/scaling"
AGENT_PORT = 9100
ROUND_GAP_S = 2.0
"""Scrapes of one object closer than this belong to one round (the scrape interval is far longer)."""
CLONE_NEWNET = 0x40000000


def listener(port: int, netns: str | None = None, address: str | None = None) -> socket.socket:
    """A listening socket on `address`:`port`, made inside network namespace `netns` (by name, as
    `ip netns` keeps them) when given: the socket stays there, the calling thread comes back. The address
    defaults to every address of that namespace, or to 127.0.0.1 on the host."""
    address = address or ("0.0.0.0" if netns else "127.0.0.1")
    if netns is None:
        return _listen(address, port)
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/self/ns/net") as home, open(f"/run/netns/{netns}") as target:
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"cannot enter network namespace {netns}")
        try:
            return _listen(address, port)
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "cannot return to the host's network namespace")


def _listen(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


@dataclass
class Round:
    first: float
    last: float
    scrapes: int
    sessions: int


@dataclass
class FarmState:
    """What the farm knows; touched only on the event loop's thread."""

    plan: LoadPlan
    objects: dict[tuple[str, str], int]
    """(namespace, WebAppScaling) → its index in the plan."""
    by_ip: dict[str, tuple[tuple[str, str], str]] = field(default_factory=dict)
    """address → (object, VM name) for every running VMI."""
    by_object: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """object → {VM name: address}, the same VMIs."""
    draining: set[str] = field(default_factory=set)
    rounds: dict[tuple[str, str], Round] = field(default_factory=dict)
    scrapes: int = 0
    unmapped_scrapes: int = 0
    drains: int = 0

    def serving(self, key: tuple[str, str]) -> list[str]:
        return sorted(vm for vm, ip in self.by_object.get(key, {}).items() if ip not in self.draining)

    def sessions_at(self, ip: str, now: float) -> int:
        mapped = self.by_ip.get(ip)
        if mapped is None or ip in self.draining:
            return 0
        key, vm = mapped
        index = self.objects.get(key)
        if index is None:
            return 0
        members = self.serving(key)
        return split(self.plan.sessions(index, now), len(members), members.index(vm))


class Farm:
    def __init__(self, state: FarmState, rounds_out: TextIO) -> None:
        self.state, self.rounds_out = state, rounds_out
        self.handler = web.Server(self.handle, access_log=None, keepalive_timeout=20)  # fds: 10,000 VMs
        self.servers: list[asyncio.base_events.Server] = []

    async def serve(self, sock: socket.socket) -> None:
        self.servers.append(await asyncio.get_running_loop().create_server(self.handler, sock=sock))

    def close(self) -> None:
        for server in self.servers:
            server.close()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        ip = sockname[0] if sockname else ""
        state, now = self.state, time.time()
        if request.path == "/metrics":
            return self._metrics(ip, now)
        if request.path == "/readyz":
            ok = ip not in state.draining
            return web.json_response({"ready": ok}, status=200 if ok else 503)
        if request.path == "/drain":
            if request.method == "POST":
                body: dict[str, Any] = {}
                with contextlib.suppress(ValueError):
                    body = await request.json()
                state.draining.add(ip)
                state.drains += 1
                return web.json_response({"draining": True, "mode": body.get("mode", "Readiness")})
            if request.method == "DELETE":
                state.draining.discard(ip)
            return web.json_response({"draining": ip in state.draining})
        return web.Response(status=404, text="not found\n")

    def _metrics(self, ip: str, now: float) -> web.Response:
        state = self.state
        state.scrapes += 1
        mapped = state.by_ip.get(ip)
        if mapped is None:
            state.unmapped_scrapes += 1
        sessions = state.sessions_at(ip, now)
        if mapped is not None:
            self._count_round(mapped[0], now, sessions)
        text = (
            "# HELP webapp_active_sessions Sessions active on this VM.\n"
            "# TYPE webapp_active_sessions gauge\n"
            f"webapp_active_sessions {sessions}\n"
        )
        return web.Response(text=text, content_type="text/plain")

    def _count_round(self, key: tuple[str, str], now: float, sessions: int) -> None:
        rounds = self.state.rounds
        current = rounds.get(key)
        if current is not None and now - current.last < ROUND_GAP_S:
            current.last, current.scrapes, current.sessions = now, current.scrapes + 1, current.sessions + sessions
            return
        if current is not None:
            self._write_round(key, current)
        rounds[key] = Round(now, now, 1, sessions)

    def _write_round(self, key: tuple[str, str], done: Round) -> None:
        line = {"namespace": key[0], "name": key[1], "first": done.first, "last": done.last}
        line |= {"scrapes": done.scrapes, "sessions": done.sessions}
        self.rounds_out.write(json.dumps(line) + "\n")

    def flush(self) -> None:
        for key, current in self.state.rounds.items():
            self._write_round(key, current)
        self.state.rounds.clear()
        self.rounds_out.flush()

    # ---- the VMs, as the emulator announces them --------------------------------------------------
    def announced(self, body: dict[str, Any]) -> None:
        """{"ip", "namespace", "vmi", "labels"}: the VM holds the address from now on; {"ip",
        "released": true}: no longer."""
        ip = str(body["ip"])
        state = self.state
        mapped = state.by_ip.pop(ip, None)
        state.draining.discard(ip)
        if mapped is not None:
            state.by_object.get(mapped[0], {}).pop(mapped[1], None)
        if body.get("released"):
            return
        key = (str(body["namespace"]), str((body.get("labels") or {}).get(LABEL_SCALING) or ""))
        name = str(body["vmi"])
        state.by_ip[ip] = (key, name)
        state.by_object.setdefault(key, {})[name] = ip


async def control_app(farm: Farm) -> web.Application:
    """POST /plan {"ramp_from": t, "steps_from": t, "frozen_at": t} (each optional); GET /stats."""

    async def set_plan(request: web.Request) -> web.Response:
        changes = await request.json()
        plan = farm.state.plan
        farm.state.plan = replace(
            plan,
            ramp_from=changes.get("ramp_from", plan.ramp_from),
            steps_from=changes.get("steps_from", plan.steps_from),
            frozen_at=changes.get("frozen_at", plan.frozen_at),
        )
        return web.json_response({"steps_from": farm.state.plan.steps_from, "frozen_at": farm.state.plan.frozen_at})

    async def stats(request: web.Request) -> web.Response:
        state = farm.state
        since = float(request.query.get("since", "inf"))
        return web.json_response(
            {
                "objects_scraped_since": sum(1 for r in state.rounds.values() if r.first >= since),
                "scrapes": state.scrapes,
                "unmapped_scrapes": state.unmapped_scrapes,
                "drains": state.drains,
                "vms": len(state.by_ip),
            }
        )

    async def vms(request: web.Request) -> web.Response:
        farm.announced(await request.json())
        return web.json_response({"vms": len(farm.state.by_ip)})

    app = web.Application()
    app.add_routes([web.post("/plan", set_plan), web.get("/stats", stats), web.post("/vms", vms)])
    return app


async def serve(args: argparse.Namespace, spec: dict[str, Any], rounds_out: TextIO) -> None:
    objects = {(ns, name): i for i, (ns, name) in enumerate(spec.pop("objects"))}
    state = FarmState(LoadPlan(objects=len(objects), **spec), objects)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    farm = Farm(state, rounds_out)
    await farm.serve(listener(args.port, args.netns, args.listen_address))
    runner = web.AppRunner(await control_app(farm), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.control_port)
    await site.start()
    port = args.control_port
    print(json.dumps({"msg": "agent farm ready", "control_port": port, "netns": args.netns}), flush=True)
    try:
        await stopping.wait()
    finally:
        farm.flush()
        await runner.cleanup()
        farm.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="agent-farm", description=__doc__.split("\n\n")[0])
    p.add_argument("--plan", type=Path, required=True, help="JSON: objects [[ns, name]…], base, high, period_s, hold_s")
    p.add_argument("--rounds", type=Path, required=True, help="JSON lines, one per scrape round of an object")
    p.add_argument("--netns", help="listen in this network namespace (where the VM subnet is local)")
    p.add_argument("--listen-address", help="default: every address of --netns, else 127.0.0.1")
    p.add_argument("--port", type=int, default=AGENT_PORT)
    p.add_argument("--control-port", type=int, required=True, help="POST /plan, GET /stats on 127.0.0.1")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    spec = json.loads(args.plan.read_text())
    with args.rounds.open("a") as rounds_out:
        asyncio.run(serve(args, spec, rounds_out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
