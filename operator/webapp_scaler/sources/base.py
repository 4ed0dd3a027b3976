"""The interfaces the reconciler talks to agents through, and what one reading looks like.

A source never raises for one bad VM: each target gets its own `Reading` with either a count or an
error, so one dead agent cannot hide the others (and all of them failing is visible as such, never
as an infinite or zero average). A count is always a whole number from 0 to
`prometheus_text.MAX_SESSIONS_PER_VM`: anything else is an error, never arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from webapp_scaler.webappscaling import DrainMode


@dataclass(frozen=True, slots=True)
class Target:
    vm: str
    url: str  # the agent's metrics URL on the VM's address


@dataclass(frozen=True, slots=True)
class Reading:
    vm: str
    sessions: float | None  # None when `error` says why there is no usable count
    error: str | None  # for a person: which agent, and what is wrong with its answer
    seconds: float  # how long the scrape took
    # the kind of problem in a word ("timeout", "range", "duplicate", …) that stays the same while the problem
    # does, when the numbers in `error` change every scrape: one Event per VM per problem, not per scrape
    problem: str | None = None


class DrainError(RuntimeError):
    """A drain (or return-to-service) request an agent did not accept; the message says why."""


class DrainModeUnsupported(DrainError):
    """The agent cannot drain in the mode asked (HTTP 409): its source cannot tell a request that carries
    a session from one that does not. Not a passing failure: repeating the request will not help."""

    def __init__(self, message: str, modes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.modes = modes  # the modes that agent says it supports


class SessionSource(Protocol):
    """Reads the session counts of a round's VMs (`agent_http.AgentHTTPSource` over each agent's /metrics)."""

    async def read(self, targets: Sequence[Target], *, metric: str, scrape_timeout: float) -> list[Reading]:
        """One reading per target, in the same order, after every fetch finished or timed out."""
        ...


class DrainControl(Protocol):
    """Tells one VM's agent to refuse new sessions or to take them again (`drain_client.AgentDrainClient`)."""

    async def set_draining(
        self, url: str, *, draining: bool, mode: DrainMode, token: str | None, request_timeout: float
    ) -> None:
        """Drain in `mode` (POST; a draining agent switches to it) or stop draining (DELETE, `mode` unused).
        Idempotent on the agent; raises `DrainModeUnsupported` when the agent cannot do `mode`, else
        `DrainError` with what went wrong."""
        ...
