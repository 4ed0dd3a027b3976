"""Turn one request/response exchange into what it says about sessions.

Shared by the proxy and the WSGI/ASGI middleware, so every way of embedding the agent counts alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from session_agent import cookies
from session_agent.tracker import Observation, SessionKey, SessionTracker


def presented_keys(
    tracker: SessionTracker, cookie_headers: Iterable[bytes], names: frozenset[bytes]
) -> list[tuple[bytes, SessionKey]]:
    """(cookie name, session key) of each session cookie the request carries.

    When a name appears twice (cookies set for two paths), only the first counts: browsers send the
    most specific path first, and one user must not count as two sessions.
    """
    found = cookies.session_ids(cookie_headers, names)
    if len(found) > 1:
        firsts: dict[bytes, bytes] = {}
        for name, value in found:
            firsts.setdefault(name, value)
        found = list(firsts.items())
    return [(name, tracker.key(name, value)) for name, value in found]


def observe(
    tracker: SessionTracker,
    presented: list[tuple[bytes, SessionKey]],
    set_cookie_headers: Iterable[bytes],
    names: frozenset[bytes],
) -> None:
    """Record the exchange: presented sessions are active, Set-Cookie starts, rotates or ends them."""
    issued: list[tuple[bytes, SessionKey]] = []
    cleared: list[bytes] = []
    for header in set_cookie_headers:
        set_cookie = cookies.parse_set_cookie(header, names)
        if set_cookie is None:
            continue
        if set_cookie.cleared:
            cleared.append(set_cookie.name)
        else:
            issued.append((set_cookie.name, tracker.key(set_cookie.name, set_cookie.value)))
    if not issued and not cleared and len(presented) == 1:
        tracker.touch(presented[0][1])  # the common case, kept cheap
        return
    tracker.observe(Observation(presented=tuple(presented), issued=tuple(issued), cleared=tuple(cleared)))
