"""Pushes an embedded tracker's count to the agent's `POST /push` (the `push` source).

The application process counts (through the WSGI or ASGI middleware); the agent next to it exports.
Pushing is periodic and best effort: a failed push is retried at the next period, never raised into
the application.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from session_agent.tracker import SessionTracker

log = logging.getLogger(__name__)


class PushReporter:
    def __init__(
        self,
        url: str,
        tracker: SessionTracker,
        *,
        interval: float = 5.0,
        lock: threading.Lock | None = None,
        requests: Callable[[], int] = lambda: 0,
    ) -> None:
        self.url = url
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
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError) as error:
            log.debug("session count push failed", extra={"fields": {"error": repr(error)}})
            return False

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
