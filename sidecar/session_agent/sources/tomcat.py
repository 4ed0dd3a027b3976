"""Session counts from Tomcat's manager text API (a user with the `manager-script` role).

Two commands give counts: `list` prints one `path:state:activeSessions:docBase` line per context,
and `sessions?path=/app` prints a histogram of sessions by idle time, which is summed. Both answer
with a first line starting `OK -` or `FAIL -`.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass

import aiohttp

from session_agent.drain import READINESS
from session_agent.sources.base import SessionStats
from session_agent.tracker import Clock

# Tomcat 7 prints "<1 minutes: 2 sessions", later versions bracket the numbers: "<1 minutes: [2] sessions".
_HISTOGRAM_LINE = re.compile(r"^\[?(?:<|>=)?\s*\d+(?:\s*-\s*<\d+)?\]?\s+minutes:\s*\[?(\d+)\]?\s+sessions\s*$")
_UNLIMITED_LINE = re.compile(r"^Unlimited time:\s*\[?(\d+)\]?\s+sessions\s*$")


def basic_auth(user: str, password: str) -> str:
    """The Authorization value for HTTP basic auth (Tomcat decodes credentials as ISO-8859-1)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode("latin-1")).decode()


class TomcatError(Exception):
    """Tomcat did not give a usable count (FAIL, unknown context, unexpected format)."""


@dataclass(frozen=True, slots=True)
class ContextReading:
    active: int
    running: bool


def _check_status(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("OK"):
        raise TomcatError(lines[0] if lines else "empty answer from the Tomcat manager")
    return lines


def parse_list(text: str, context_path: str) -> ContextReading:
    """The `list` answer's line for `context_path` ("/" for ROOT)."""
    for line in _check_status(text)[1:]:
        parts = line.split(":", 3)
        if len(parts) == 4 and parts[0] == context_path:
            try:
                active = int(parts[2])
            except ValueError:
                raise TomcatError(f"unexpected session count in {line!r}") from None
            return ContextReading(active=active, running=parts[1] == "running")
    raise TomcatError(f"context {context_path} is not deployed")


def parse_sessions(text: str) -> int:
    """Sum of the `sessions` histogram (expiry lines of the `expire` command are not sessions)."""
    total = 0
    for line in _check_status(text)[1:]:
        if "expired" in line:
            continue
        match = _HISTOGRAM_LINE.match(line) or _UNLIMITED_LINE.match(line)
        if match:
            total += int(match.group(1))
    return total


class TomcatSource:
    name = "tomcat"
    drain_modes: tuple[str, ...] = (READINESS,)
    drain_limitation = "reads Tomcat's own count from its manager and never sees a request"

    def __init__(
        self,
        *,
        manager_url: str,
        context_path: str,
        command: str = "list",
        user: str | None = None,
        password: str | None = None,
        timeout: float = 5.0,
        min_interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if command not in ("list", "sessions"):
            raise ValueError("command must be 'list' or 'sessions'")
        self.manager_url = manager_url.rstrip("/")
        self.context_path = context_path
        self.command = command
        self._headers = {"Authorization": basic_auth(user, password or "")} if user else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._min_interval = min_interval
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._active = 0
        self._running = True
        self._last_fetch: float | None = None
        self._last_error: str | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def refresh(self) -> None:
        """Fetch at most once per `min_interval`, so frequent scrapes do not load Tomcat."""
        now = self._clock()
        if self._last_fetch is not None and now - self._last_fetch < self._min_interval:
            if self._last_error is not None:
                raise TomcatError(self._last_error)
            return
        self._last_fetch = now
        try:
            await self._fetch()
        except (TomcatError, aiohttp.ClientError, TimeoutError) as error:
            self._last_error = f"{error.__class__.__name__}: {error}"
            raise
        self._last_error = None

    async def _fetch(self) -> None:
        assert self._session is not None, "start() first"
        if self.command == "list":
            url, params = f"{self.manager_url}/list", {}
        else:
            url, params = f"{self.manager_url}/sessions", {"path": self.context_path}
        async with self._session.get(url, params=params, headers=self._headers) as response:
            if response.status != 200:
                raise TomcatError(f"the Tomcat manager answered HTTP {response.status}")
            text = await response.text()
        if self.command == "list":
            reading = parse_list(text, self.context_path)
            self._active, self._running = reading.active, reading.running
        else:
            self._active, self._running = parse_sessions(text), True

    def stats(self) -> SessionStats:
        return SessionStats(active=self._active)

    async def unready_reason(self) -> str | None:
        try:
            await self.refresh()
        except (TomcatError, aiohttp.ClientError, TimeoutError) as error:
            return f"the Tomcat manager gave no reading: {error}"
        if not self._running:
            return f"context {self.context_path} is not running"
        return None
