"""Finding session cookies in Cookie and Set-Cookie headers.

Parsing is deliberately forgiving: a malformed cookie is skipped, never an error, because browsers
and applications send all sorts of cookies next to the session one and the agent must not fail a
request the application itself would accept.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_COOKIE_NAMES: tuple[str, ...] = ("JSESSIONID", "PHPSESSID", "ASP.NET_SessionId", "connect.sid")
MAX_SESSION_ID_BYTES = 4096
"""Browsers cap a cookie at 4 KiB; anything longer is not a real session id and is not tracked."""


@dataclass(frozen=True, slots=True)
class SetCookie:
    """A Set-Cookie for a session cookie: either a (new) session id, or a deletion."""

    name: bytes
    value: bytes
    cleared: bool


def _unquote(value: bytes) -> bytes:
    if len(value) >= 2 and value[:1] == b'"' and value[-1:] == b'"':
        return value[1:-1]
    return value


def session_ids(cookie_headers: Iterable[bytes], names: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    """(name, id) of every session cookie in the Cookie headers of a request."""
    found: list[tuple[bytes, bytes]] = []
    for header in cookie_headers:
        for pair in header.split(b";"):
            name, sep, value = pair.strip().partition(b"=")
            if not sep or name not in names:
                continue
            value = _unquote(value.strip())
            if 0 < len(value) <= MAX_SESSION_ID_BYTES:
                found.append((name, value))
    return found


def _is_in_past(expires: bytes) -> bool:
    try:
        when = email.utils.parsedate_to_datetime(expires.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return False
    return when.timestamp() <= time.time()


def parse_set_cookie(header: bytes, names: frozenset[bytes]) -> SetCookie | None:
    """The session cookie a Set-Cookie header sets or deletes, or None for any other cookie."""
    first, _, attributes = header.partition(b";")
    name, sep, value = first.strip().partition(b"=")
    if not sep or name not in names:
        return None
    value = _unquote(value.strip())
    if len(value) > MAX_SESSION_ID_BYTES:
        return None
    cleared = not value
    for attribute in attributes.split(b";"):
        key, _, arg = attribute.strip().partition(b"=")
        key = key.lower()
        if key == b"max-age":
            try:
                cleared = cleared or int(arg.strip()) <= 0
            except ValueError:
                continue
        elif key == b"expires" and _is_in_past(arg.strip()):
            cleared = True
    return SetCookie(name=name, value=value, cleared=cleared)
