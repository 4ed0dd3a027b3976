"""Pure pieces: the tracker's bookkeeping, cookie and HTTP head parsing."""

from __future__ import annotations

import pytest

from session_agent import cookies, http1
from session_agent.tracker import Observation, SessionTracker
from tests.unit.agent.conftest import FakeClock

NAMES = frozenset({b"JSESSIONID", b"PHPSESSID"})


def _tracker(clock: FakeClock, cap: int = 100) -> SessionTracker:
    return SessionTracker(idle_timeout=10, max_sessions=cap, clock=clock)


def test_tracker_expires_exactly_at_the_idle_timeout(clock: FakeClock) -> None:
    tracker = _tracker(clock)
    a, b = tracker.key(b"JSESSIONID", b"a"), tracker.key(b"JSESSIONID", b"b")
    tracker.touch(a)
    clock.advance(5)
    tracker.touch(b)
    clock.advance(4.9)
    assert tracker.active() == 2
    tracker.touch(a)  # activity restarts a's timeout
    clock.advance(5.1)
    assert tracker.active() == 1
    assert tracker.knows(a)
    assert not tracker.knows(b)
    assert (tracker.started, tracker.expired) == (2, 1)


def test_tracker_evicts_the_least_recently_used_at_the_cap(clock: FakeClock) -> None:
    tracker = _tracker(clock, cap=3)
    keys = [tracker.key(b"JSESSIONID", str(i).encode()) for i in range(5)]
    for key in keys[:3]:
        tracker.touch(key)
        clock.advance(1)
    tracker.touch(keys[0])
    tracker.touch(keys[3])
    tracker.touch(keys[4])
    assert tracker.active() == 3
    assert tracker.evicted == 2
    assert [tracker.knows(k) for k in keys] == [True, False, False, True, True]


def test_tracker_rotation_and_logout(clock: FakeClock) -> None:
    tracker = _tracker(clock)
    old, new = tracker.key(b"JSESSIONID", b"old"), tracker.key(b"JSESSIONID", b"new")
    tracker.observe(Observation(issued=((b"JSESSIONID", old),)))
    tracker.observe(Observation(presented=((b"JSESSIONID", old),), issued=((b"JSESSIONID", new),)))
    assert (tracker.active(), tracker.started) == (1, 1)
    assert tracker.knows(new)
    tracker.observe(Observation(presented=((b"JSESSIONID", new),), cleared=(b"JSESSIONID",)))
    assert (tracker.active(), tracker.logged_out, tracker.expired) == (0, 1, 0)


def test_tracker_keys_are_keyed_hashes(clock: FakeClock) -> None:
    first, second = _tracker(clock), _tracker(clock)
    sid = b"0123456789ABCDEF"
    assert sid not in first.key(b"JSESSIONID", sid)
    assert first.key(b"JSESSIONID", sid) != second.key(b"JSESSIONID", sid)  # secret per process/tracker


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([b"JSESSIONID=abc"], [(b"JSESSIONID", b"abc")], id="plain"),
        pytest.param([b"a=1; PHPSESSID=x;b=2"], [(b"PHPSESSID", b"x")], id="among-others"),
        pytest.param([b'JSESSIONID="q"'], [(b"JSESSIONID", b"q")], id="quoted"),
        pytest.param([b"JSESSIONID="], [], id="empty"),
        pytest.param([b"jsessionid=abc"], [], id="names-are-case-sensitive"),
        pytest.param([b"JSESSIONID=" + b"x" * 5000], [], id="too-long"),
        pytest.param([b";;=;JSESSIONID"], [], id="garbage"),
        pytest.param([b"JSESSIONID=a", b"PHPSESSID=b"], [(b"JSESSIONID", b"a"), (b"PHPSESSID", b"b")], id="2-headers"),
    ],
)
def test_session_ids(headers: list[bytes], expected: list[tuple[bytes, bytes]]) -> None:
    assert cookies.session_ids(headers, NAMES) == expected


@pytest.mark.parametrize(
    ("header", "value", "cleared"),
    [
        pytest.param(b"JSESSIONID=abc; Path=/; HttpOnly", b"abc", False, id="new-session"),
        pytest.param(b"JSESSIONID=; Path=/", b"", True, id="empty-value"),
        pytest.param(b"JSESSIONID=abc; Max-Age=0", b"abc", True, id="max-age-0"),
        pytest.param(b"JSESSIONID=abc; max-age=-1", b"abc", True, id="max-age-negative"),
        pytest.param(b"JSESSIONID=abc; Expires=Thu, 01 Jan 1970 00:00:00 GMT", b"abc", True, id="expired"),
        pytest.param(b"JSESSIONID=abc; Expires=Fri, 01 Jan 2100 00:00:00 GMT", b"abc", False, id="future"),
        pytest.param(b"JSESSIONID=abc; Expires=garbage; Max-Age=x", b"abc", False, id="bad-attributes"),
    ],
)
def test_parse_set_cookie(header: bytes, value: bytes, cleared: bool) -> None:
    assert cookies.parse_set_cookie(header, NAMES) == cookies.SetCookie(b"JSESSIONID", value, cleared)


def test_parse_set_cookie_ignores_other_cookies() -> None:
    assert cookies.parse_set_cookie(b"theme=dark; Path=/", NAMES) is None


def test_request_head_framing_and_connection() -> None:
    head = http1.parse_request_head(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
        b"Cookie: JSESSIONID=1\r\nCookie: b=2\r\n\r\n",
        max_headers=10,
    )
    assert head.framing.chunked
    assert not head.keep_alive
    assert head.cookies == [b"JSESSIONID=1", b"b=2"]
    old = http1.parse_request_head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", max_headers=10)
    assert old.keep_alive
    upgrade = http1.parse_request_head(
        b"GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", max_headers=10
    )
    assert upgrade.upgrade


@pytest.mark.parametrize(
    ("raw", "method", "length", "chunked", "keep_alive"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"GET", 5, False, True, id="length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"HEAD", 0, False, True, id="head"),
        pytest.param(b"HTTP/1.1 304 Not Modified\r\n\r\n", b"GET", 0, False, True, id="304"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"GET", None, True, True, id="chunked"),
        pytest.param(b"HTTP/1.1 200 OK\r\n\r\n", b"GET", None, False, False, id="until-close"),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", b"GET", 1, False, False, id="http10"),
    ],
)
def test_response_framing(raw: bytes, method: bytes, length: int | None, chunked: bool, keep_alive: bool) -> None:
    head = http1.parse_response_head(raw, request_method=method, max_headers=10)
    assert (head.framing.content_length, head.framing.chunked, head.keep_alive) == (length, chunked, keep_alive)
