"""Drain state and who may change it.

Draining is how a VM leaves the load balancer without cutting anyone: /readyz fails so no new user is
sent here, while the users who already have a session here keep being served until they leave.
"""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DrainState:
    draining: bool = False
    since: float | None = None
    """Wall-clock time (epoch seconds) when draining began."""

    def start(self) -> bool:
        """Begin draining; returns False when it was already draining (idempotent)."""
        if self.draining:
            return False
        self.draining = True
        self.since = time.time()
        return True

    def cancel(self) -> bool:
        """Take users again (a scale-in was called off); returns False when it was not draining."""
        if not self.draining:
            return False
        self.draining = False
        self.since = None
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
