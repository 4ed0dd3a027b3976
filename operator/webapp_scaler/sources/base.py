"""The interfaces the reconciler talks to agents through, and what one reading looks like.

A source never raises for one bad VM: each target gets its own `Reading` with either a count or an
error, so one dead agent cannot hide the others (and all of them failing is visible as such, never
as an infinite or zero average).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Target:
    vm: str
    url: str  # the agent's metrics URL on the VM's address


@dataclass(frozen=True, slots=True)
class Reading:
    vm: str
    sessions: float | None  # None when `error` says why there is no usable count
    error: str | None
    seconds: float  # how long the scrape took


class DrainError(RuntimeError):
    """A drain (or return-to-service) request an agent did not accept; the message says why."""


class SessionSource(Protocol):
    """Reads the session counts of a round's VMs (`agent_http.AgentHTTPSource` over each agent's /metrics)."""

    async def read(self, targets: Sequence[Target], *, metric: str, scrape_timeout: float) -> list[Reading]:
        """One reading per target, in the same order, after every fetch finished or timed out."""
        ...


class DrainControl(Protocol):
    """Tells one VM's agent to refuse new sessions or to take them again (`drain_client.AgentDrainClient`)."""

    async def set_draining(self, url: str, *, draining: bool, token: str | None, request_timeout: float) -> None:
        """Idempotent on the agent; raises `DrainError` with what went wrong."""
        ...
