"""The set of live sessions, keyed by a hash of the session id.

Session ids are bearer credentials, so only a keyed hash (secret per process) is ever kept; nothing
that leaves this module can be turned back into an id. Entries are ordered by last activity, so idle
expiry and eviction of the least recently used session are both O(1) per session.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
"""Seconds on a monotonic scale; injectable so expiry tests need not sleep."""

SessionKey = bytes


@dataclass(frozen=True, slots=True)
class Observation:
    """What one request/response exchange said about sessions, by cookie name."""

    presented: tuple[tuple[bytes, SessionKey], ...] = ()
    issued: tuple[tuple[bytes, SessionKey], ...] = ()
    cleared: tuple[bytes, ...] = ()


class SessionTracker:
    """Distinct sessions seen within the idle timeout, bounded by `max_sessions`."""

    def __init__(self, *, idle_timeout: float, max_sessions: int, clock: Clock = time.monotonic) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if max_sessions <= 0:
            raise ValueError("max_sessions must be positive")
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._clock = clock
        self._secret = os.urandom(32)
        self._last_seen: OrderedDict[SessionKey, float] = OrderedDict()
        self.started = 0
        self.expired = 0
        self.logged_out = 0
        self.evicted = 0

    def key(self, cookie_name: bytes, session_id: bytes) -> SessionKey:
        """A keyed digest: stable within this process, meaningless outside it."""
        return hashlib.blake2b(cookie_name + b"=" + session_id, key=self._secret, digest_size=16).digest()

    def knows(self, key: SessionKey) -> bool:
        """True when the session is live (seen within the idle timeout); does not refresh it."""
        last = self._last_seen.get(key)
        return last is not None and self._clock() - last < self.idle_timeout

    def touch(self, key: SessionKey) -> None:
        """Record activity on a session, starting it if it is new."""
        now = self._clock()
        self._expire(now)
        seen = self._last_seen
        if key in seen:
            seen[key] = now
            seen.move_to_end(key)
            return
        self._insert(key, now)
        self.started += 1

    def end(self, key: SessionKey) -> None:
        """The application cleared the cookie: the session is over (a logout)."""
        if self._last_seen.pop(key, None) is not None:
            self.logged_out += 1

    def rotate(self, old: SessionKey, new: SessionKey) -> None:
        """The application replaced a session id (fixation protection): same session, new key."""
        now = self._clock()
        self._expire(now)
        if self._last_seen.pop(old, None) is None:
            self.touch(new)
            return
        if new not in self._last_seen:
            self._insert(new, now)
        else:
            self._last_seen[new] = now
            self._last_seen.move_to_end(new)

    def observe(self, observation: Observation) -> None:
        """Apply one exchange: cleared cookies end sessions, issued ones start or rotate them."""
        presented = dict(observation.presented)
        for name in observation.cleared:
            old = presented.pop(name, None)
            if old is not None:
                self.end(old)
        for name, new in observation.issued:
            old = presented.pop(name, None)
            if old is not None and old != new:
                self.rotate(old, new)
            else:
                self.touch(new)
        for key in presented.values():
            self.touch(key)

    def active(self) -> int:
        """Live sessions now; expires idle ones first so every reading is exact."""
        self._expire(self._clock())
        return len(self._last_seen)

    def _insert(self, key: SessionKey, now: float) -> None:
        seen = self._last_seen
        while len(seen) >= self.max_sessions:
            seen.popitem(last=False)
            self.evicted += 1
        seen[key] = now

    def _expire(self, now: float) -> None:
        seen = self._last_seen
        deadline = now - self.idle_timeout
        while seen:
            key, last = next(iter(seen.items()))
            if last > deadline:
                return
            del seen[key]
            self.expired += 1
