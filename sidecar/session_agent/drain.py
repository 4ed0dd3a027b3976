"""Drain state and who may change it.

Draining is how a VM leaves the load balancer without cutting anyone: no new user gets a session here,
while the users who already have a session here keep being served until they leave. Two modes:

- `Readiness`: /readyz fails, so the load balancer sends nobody new; a request that still arrives
  without a session held here is refused (where the source sees requests).
- `RefuseNewSessions`: /readyz stays ready (the VM stays Ready in Kubernetes' eyes, e.g. so a sticky
  load balancer keeps routing its users here); every request without a held session is refused with
  503 + Retry-After + Connection: close. Only a source in the request path can do this.
"""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

READINESS = "Readiness"
REFUSE_NEW_SESSIONS = "RefuseNewSessions"
DRAIN_MODES: tuple[str, ...] = (READINESS, REFUSE_NEW_SESSIONS)
"""Every drain mode, in the order they are documented and exported."""
DEFAULT_DRAIN_MODE = READINESS
"""The mode of a drain request that names none (what every agent did before modes existed)."""

DrainChange = Literal["started", "switched", "unchanged"]


@dataclass
class DrainState:
    draining: bool = False
    """Read on the proxy's hot path: a plain attribute, True exactly when `mode` is not None."""
    since: float | None = None
    """Wall-clock time (epoch seconds) when draining began."""
    mode: str | None = None
    """The current drain mode (one of DRAIN_MODES) while draining, else None."""

    @property
    def ready(self) -> bool:
        """False while a drain takes the VM out of readiness (mode Readiness)."""
        return not self.draining or self.mode == REFUSE_NEW_SESSIONS

    def start(self, mode: str = DEFAULT_DRAIN_MODE) -> DrainChange:
        """Begin draining in `mode`, or switch an ongoing drain to it (keeping `since`). Idempotent:
        repeating the same request is "unchanged"."""
        if mode not in DRAIN_MODES:
            raise ValueError(f"unknown drain mode {mode!r}")
        if self.draining:
            if self.mode == mode:
                return "unchanged"
            self.mode = mode
            return "switched"
        self.mode = mode
        self.since = time.time()
        self.draining = True
        return "started"

    def cancel(self) -> bool:
        """Take users again (a scale-in was called off); returns False when it was not draining."""
        if not self.draining:
            return False
        self.draining = False
        self.since = None
        self.mode = None
        return True


@dataclass(frozen=True)
class DrainToken:
    """The bearer token that authorizes drain changes, from a file (re-read on each use) or env."""

    file: Path | None = None
    env_var: str = "SESSION_AGENT_DRAIN_TOKEN"

    def expected(self) -> str | None:
        if self.file is not None:
            try:
                token = self.file.read_text().strip()
            except OSError:
                return None
            return token or None
        return os.environ.get(self.env_var, "").strip() or None

    def check(self, authorization: str | None) -> str | None:
        """None when the Authorization header carries the token; otherwise why it does not."""
        expected = self.expected()
        if expected is None:
            return "drain is disabled: no drain token is configured"
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
            return "a valid bearer token is required"
        return None
