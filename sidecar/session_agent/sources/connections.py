"""Established TCP connections to the application's port, from /proc/net/tcp and /proc/net/tcp6.

No proxy in the path and no change to the application: the cheapest source, and the roughest — a
connection is not a session (browsers open several, keep-alive ends before the session does).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from session_agent.drain import READINESS
from session_agent.sources.base import SessionStats

ESTABLISHED = "01"


def count_established(lines: Iterable[str], port: int, *, distinct_peers: bool = False) -> int:
    """Connections in state ESTABLISHED whose local port is `port` (the server side only)."""
    count = 0
    peers: set[str] = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != ESTABLISHED or ":" not in fields[1]:
            continue
        try:
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
        except ValueError:
            continue
        if local_port != port:
            continue
        count += 1
        peers.add(fields[2].rsplit(":", 1)[0])
    return len(peers) if distinct_peers else count


class ConnectionsSource:
    name = "connections"
    drain_modes: tuple[str, ...] = (READINESS,)
    drain_limitation = "counts TCP connections and cannot tell which requests carry a session"

    def __init__(self, *, port: int, proc_net: Path = Path("/proc/net"), distinct_peers: bool = False) -> None:
        self.port = port
        self.proc_net = proc_net
        self.distinct_peers = distinct_peers
        self._active = 0

    async def start(self) -> None:
        await self.refresh()

    async def stop(self) -> None:
        return None

    async def refresh(self) -> None:
        lines: list[str] = []
        found = False
        for table in ("tcp", "tcp6"):
            try:
                lines.extend((self.proc_net / table).read_text().splitlines()[1:])
                found = True
            except FileNotFoundError:
                continue  # a kernel without IPv6 has no tcp6 table
        if not found:
            raise FileNotFoundError(f"no TCP tables under {self.proc_net}")
        self._active = count_established(lines, self.port, distinct_peers=self.distinct_peers)

    def stats(self) -> SessionStats:
        return SessionStats(active=self._active)

    async def unready_reason(self) -> str | None:
        return None
