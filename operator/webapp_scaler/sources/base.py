"""The interface every session source implements, and what one reading looks like.

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


class SessionSource(Protocol):
    async def read(self, targets: Sequence[Target], *, metric: str, scrape_timeout: float) -> list[Reading]:
        """One reading per target, in the same order, after every fetch finished or timed out."""
        ...
