"""The one small interface every session source implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SessionStats:
    """A reading of a source. Counters a source cannot know are None and are not exported."""

    active: int
    started: int | None = None
    expired: int | None = None
    logged_out: int | None = None
    evicted: int | None = None
    requests: int | None = None
    rejected: Mapping[str, int] = field(default_factory=dict)


class SessionSource(Protocol):
    """Counts the application's active sessions."""

    name: str
    drain_modes: tuple[str, ...]
    """The drain modes (session_agent.drain.DRAIN_MODES) this source can honour. `RefuseNewSessions`
    needs a source in the request path that knows which requests carry a held session."""
    drain_limitation: str
    """Why the source supports no more modes than it does, as the middle of a sentence ("the X source
    <drain_limitation>, so it cannot refuse only new sessions"); empty when it supports them all."""

    async def start(self) -> None:
        """Open listeners or connections; called once before the first reading."""

    async def stop(self) -> None:
        """Release everything; in-flight work is allowed to finish (bounded by a grace period)."""

    async def refresh(self) -> None:
        """Bring the reading up to date; called before every scrape and drain report."""

    def stats(self) -> SessionStats:
        """The latest reading."""

    async def unready_reason(self) -> str | None:
        """Why the application cannot take users now (None when it can); drives /readyz."""
