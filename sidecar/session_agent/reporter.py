"""Pushes an embedded tracker's count to the agent's `POST /push` (the `push` source).

The application process counts (through the WSGI or ASGI middleware); the agent next to it exports.
Pushing is periodic and best effort: a failed push is retried at the next period, never raised into
the application. The agent's answer tells whether it drains; the reporter keeps that in an `AgentDrain`
the middleware reads on every request (a failed push keeps the last state learned).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from session_agent.drain import DRAIN_MODES
from session_agent.tracker import SessionTracker

log = logging.getLogger(__name__)


@dataclass
class AgentDrain:
    """The agent's drain state as the embedded middleware knows it (from the answers to its pushes)."""

    mode: str | None = None
    """The agent's drain mode while it drains, else None. Read without a lock: one attribute."""

    def learn(self, answer: object) -> None:
        """Take the drain state from the agent's answer to a push; an answer without one changes nothing."""
        if not isinstance(answer, dict) or not isinstance(answer.get("draining"), bool):
            return
        mode = answer.get("mode")
        if not answer["draining"]:
            self.mode = None
        elif mode in DRAIN_MODES:
            self.mode = str(mode)


class PushReporter:
    def __init__(
        self,
        url: str,
        tracker: SessionTracker,
        *,
        interval: float = 5.0,
        lock: threading.Lock | None = None,
        requests: Callable[[], int] = lambda: 0,
        drain: AgentDrain | None = None,
    ) -> None:
        self.url = url
        self.drain = drain if drain is not None else AgentDrain()
        self.tracker = tracker
        self.interval = interval
        self.requests = requests
        self._lock = lock or threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def body(self) -> bytes:
        with self._lock:
            t = self.tracker
            reading = {
                "active_sessions": t.active(),
                "started": t.started,
                "expired": t.expired,
                "logged_out": t.logged_out,
                "evicted": t.evicted,
                "requests": self.requests(),
            }
        return json.dumps(reading).encode()

    def push_once(self) -> bool:
        """One push; True when the agent accepted it."""
        return self._post(self.body())

    def _post(self, body: bytes) -> bool:
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=max(1.0, self.interval)) as response:
                accepted = bool(response.status == 200)
                answer = response.read(4096)
        except (urllib.error.URLError, OSError) as error:
            log.debug("session count push failed", extra={"fields": {"error": repr(error)}})
            return False
        if accepted:
            with contextlib.suppress(ValueError):  # not JSON: an agent from before drain modes
                self.drain.learn(json.loads(answer))
        return accepted

    def start_thread(self) -> None:
        """For WSGI servers: push from a daemon thread every `interval` seconds until `stop()`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="session-push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 2)
            self._thread = None

    def _loop(self) -> None:
        while True:
            self.push_once()
            if self._stop.wait(self.interval):
                return

    async def run(self) -> None:
        """For ASGI apps: push every `interval` seconds until cancelled.

        The reading is taken on the event loop (the tracker is not shared with another thread); only
        the blocking HTTP call runs in a worker thread.
        """
        while True:
            await asyncio.to_thread(self._post, self.body())
            await asyncio.sleep(self.interval)
