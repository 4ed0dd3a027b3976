"""Server-side, in-memory sessions with an idle timeout, as a servlet container keeps them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Session:
    id: str
    last_access: float
    user: str | None = None
    cart: dict[str, int] = field(default_factory=dict)
    orders: list[str] = field(default_factory=list)


class SessionStore:
    def __init__(self, *, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self) -> Session:
        session = Session(id=secrets.token_hex(16).upper(), last_access=self._clock())
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, touched; None when unknown or expired."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_access >= self.timeout:
            del self._sessions[session_id]
            return None
        session.last_access = now
        return session

    def rotate(self, session: Session) -> Session:
        """New id for the same session (after login), as servlet containers do against fixation."""
        del self._sessions[session.id]
        session.id = secrets.token_hex(16).upper()
        self._sessions[session.id] = session
        return session

    def delete(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def count(self) -> int:
        """Live sessions; expired ones are swept first."""
        now = self._clock()
        expired = [sid for sid, s in self._sessions.items() if now - s.last_access >= self.timeout]
        for sid in expired:
            del self._sessions[sid]
        return len(self._sessions)
