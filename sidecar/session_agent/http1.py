"""Just enough HTTP/1.1 for a transparent reverse proxy: parse heads, find message framing.

Heads are forwarded byte for byte; only the fields the proxy needs are extracted. Anything that could
make the proxy and the application disagree on where a message ends (request smuggling) is rejected
with 400, as RFC 9112 asks of a proxy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class HttpError(Exception):
    """A request the proxy answers itself, with `status` and a plain-text explanation."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


REASONS = {
    100: "Continue",
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def error_response(status: int, detail: str, extra_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A complete response that closes the connection: used for every error the proxy produces."""
    body = (detail + "\n").encode()
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in extra_headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(slots=True)
class Framing:
    """How the body of a message is delimited."""

    content_length: int | None = None
    chunked: bool = False


@dataclass(slots=True)
class RequestHead:
    method: bytes
    version: bytes
    raw: bytes
    framing: Framing
    cookies: list[bytes] = field(default_factory=list)
    keep_alive: bool = True
    upgrade: bool = False
    expect_continue: bool = False


@dataclass(slots=True)
class ResponseHead:
    status: int
    raw: bytes
    framing: Framing
    set_cookies: list[bytes] = field(default_factory=list)
    keep_alive: bool = True


# One pass validates a whole head: a start line and `token: value` fields, each ending in CRLF, with no
# control characters (HTAB excepted) and no bare CR or LF anywhere. Smuggling tricks ("Transfer-Encoding
# : chunked", obs-fold continuation lines, a lone LF hiding a second header) all fail it.
_VALID_HEAD = re.compile(
    rb"[^\x00-\x08\x0a-\x1f\x7f]*\r\n(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*\r\n"
)


def _diagnose(raw: bytes, error_status: int) -> HttpError:
    """Why a head failed validation, for a helpful error message (off the hot path)."""
    if raw.count(b"\n") != raw.count(b"\r\n") or raw.count(b"\r") != raw.count(b"\r\n"):
        return HttpError(error_status, "bare CR or LF in the message head")
    if _CONTROL.search(raw):
        return HttpError(error_status, "control character in the message head")
    return HttpError(error_status, "malformed header field")


def _validate(raw: bytes, max_headers: int, error_status: int) -> None:
    if _VALID_HEAD.fullmatch(raw) is None:
        raise _diagnose(raw, error_status)
    if raw.count(b"\r\n") - 2 > max_headers:
        raise HttpError(431 if error_status == 400 else error_status, "too many header fields")


def _fields(raw: bytes, lower: bytes, name: bytes) -> list[bytes]:
    """Values of every field called `name` (lowercase), found with C-speed searches of the head."""
    values: list[bytes] = []
    needle = b"\r\n" + name + b":"
    at = lower.find(needle)
    while at >= 0:
        start = at + len(needle)
        end = raw.find(b"\r\n", start)
        values.append(raw[start:end].strip(b" \t"))
        at = lower.find(needle, end)
    return values


def _content_length(values: list[bytes], error_status: int) -> int | None:
    if not values:
        return None
    lengths = set()
    for value in values:
        for item in value.split(b","):  # "Content-Length: 5, 5" is allowed when all agree
            item = item.strip(b" \t")
            if not _DIGITS.fullmatch(item):
                raise HttpError(error_status, "invalid Content-Length")
            lengths.add(int(item))
    if len(lengths) != 1:
        raise HttpError(error_status, "conflicting Content-Length headers")
    return lengths.pop()


def _tokens(values: list[bytes]) -> set[bytes]:
    return {token.strip(b" \t").lower() for value in values for token in value.split(b",")}


def _last_coding(values: list[bytes]) -> bytes:
    return b",".join(values).rsplit(b",", 1)[-1].strip(b" \t").lower()


def parse_request_head(raw: bytes, *, max_headers: int) -> RequestHead:
    """Parse a request head (ending in CRLFCRLF); raises HttpError for anything unsafe to forward."""
    _validate(raw, max_headers, 400)
    parts = raw[: raw.find(b"\r\n")].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise HttpError(400, "malformed request line")
    method, _, version = parts
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        if version.startswith(b"HTTP/"):
            raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        raise HttpError(400, "malformed request line")
    lower = raw.lower()
    framing = Framing(content_length=_content_length(_fields(raw, lower, b"content-length"), 400))
    head = RequestHead(method=method, version=version, raw=raw, framing=framing)
    if b"\r\ncookie:" in lower:
        head.cookies = _fields(raw, lower, b"cookie")
    if b"\r\ntransfer-encoding:" in lower:
        if _last_coding(_fields(raw, lower, b"transfer-encoding")) != b"chunked":
            raise HttpError(400, "a request body must end with the chunked transfer coding")
        if framing.content_length is not None:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if version == b"HTTP/1.0":
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        framing.chunked = True
    connection = _tokens(_fields(raw, lower, b"connection")) if b"\r\nconnection:" in lower else set()
    if version == b"HTTP/1.1":
        head.keep_alive = b"close" not in connection
    else:
        head.keep_alive = b"keep-alive" in connection
    head.upgrade = b"upgrade" in connection and b"\r\nupgrade:" in lower
    if b"\r\nexpect:" in lower:
        head.expect_continue = b"100-continue" in [v.lower() for v in _fields(raw, lower, b"expect")]
    return head


def parse_response_head(raw: bytes, *, request_method: bytes, max_headers: int) -> ResponseHead:
    """Parse an upstream response head; raises HttpError(502) when the application's answer is broken."""
    _validate(raw, max_headers, 502)
    parts = raw[: raw.find(b"\r\n")].split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or not _DIGITS.fullmatch(parts[1]):
        raise HttpError(502, "the application sent a malformed status line")
    status = int(parts[1])
    lower = raw.lower()
    framing = Framing(content_length=_content_length(_fields(raw, lower, b"content-length"), 502))
    head = ResponseHead(status=status, raw=raw, framing=framing)
    if b"\r\nset-cookie:" in lower:
        head.set_cookies = _fields(raw, lower, b"set-cookie")
    no_body = request_method == b"HEAD" or status < 200 or status in (204, 304)
    if no_body:
        framing.content_length = 0
    elif b"\r\ntransfer-encoding:" in lower:
        framing.content_length = None
        framing.chunked = _last_coding(_fields(raw, lower, b"transfer-encoding")) == b"chunked"
    connection = _tokens(_fields(raw, lower, b"connection")) if b"\r\nconnection:" in lower else set()
    if parts[0] == b"HTTP/1.1":
        head.keep_alive = b"close" not in connection
    else:
        head.keep_alive = b"keep-alive" in connection
    if not no_body and framing.content_length is None and not framing.chunked:
        head.keep_alive = False  # the body ends when the application closes the connection
    return head


def chunk_size(line: bytes) -> int:
    """Size of a chunk from its size line (extensions ignored); raises HttpError on garbage."""
    size = line[:-2].split(b";", 1)[0].strip()
    if not _HEX.fullmatch(size):
        raise HttpError(400, "malformed chunk size")
    return int(size, 16)


MAX_CHUNK_LINE = 4096
"""A chunk-size line or trailer field longer than this is an attack, not HTTP."""


class BodyScanner:
    """Finds where a message body ends in a byte stream, without copying or changing the bytes.

    `feed(data, start)` consumes data[start:] and returns the index just past the end of the body, or
    -1 when all of it belongs to the body and more is expected. Bodies are forwarded as received; the
    scanner only keeps the proxy and both peers in agreement on message boundaries.
    """

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False

    def feed(self, data: bytes | bytearray, start: int) -> int:
        raise NotImplementedError


class LengthScanner(BodyScanner):
    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        super().__init__()
        self.remaining = length
        self.done = length == 0

    def feed(self, data: bytes | bytearray, start: int) -> int:
        available = len(data) - start
        if available < self.remaining:
            self.remaining -= available
            return -1
        end = start + self.remaining
        self.remaining = 0
        self.done = True
        return end


class UntilCloseScanner(BodyScanner):
    """A response without length or chunking: the body ends when the application closes."""

    __slots__ = ()

    def feed(self, data: bytes | bytearray, start: int) -> int:
        return -1


_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class ChunkedScanner(BodyScanner):
    __slots__ = ("line", "remaining", "state")

    def __init__(self) -> None:
        super().__init__()
        self.state = _SIZE
        self.remaining = 0
        self.line = b""

    def _take_line(self, data: bytes | bytearray, i: int) -> int:
        """Append up to and including the next LF to `line`; the index after it, or -1 if none yet."""
        j = data.find(b"\n", i)
        if j < 0:
            self.line += data[i:]
            if len(self.line) > MAX_CHUNK_LINE:
                raise HttpError(400, "chunk-size line or trailer too long")
            return -1
        self.line += data[i : j + 1]
        if len(self.line) > MAX_CHUNK_LINE:
            raise HttpError(400, "chunk-size line or trailer too long")
        return j + 1

    def feed(self, data: bytes | bytearray, start: int) -> int:
        i, n = start, len(data)
        while i < n:
            state = self.state
            if state == _DATA:
                take = min(self.remaining, n - i)
                i += take
                self.remaining -= take
                if not self.remaining:
                    self.state = _DATA_END
            elif state == _SIZE:
                i = self._take_line(data, i)
                if i < 0:
                    return -1
                line, self.line = self.line, b""
                if not line.endswith(b"\r\n"):
                    raise HttpError(400, "malformed chunk-size line")
                size = chunk_size(line)
                if size:
                    self.state, self.remaining = _DATA, size
                else:
                    self.state = _TRAILER
            elif state == _DATA_END:
                need = 2 - len(self.line)
                self.line += data[i : i + need]
                i += min(need, n - i)
                if len(self.line) == 2:
                    if self.line != b"\r\n":
                        raise HttpError(400, "chunk data not followed by CRLF")
                    self.line, self.state = b"", _SIZE
            else:  # trailer fields, then the empty line that ends the message
                i = self._take_line(data, i)
                if i < 0:
                    return -1
                line, self.line = self.line, b""
                if line == b"\r\n":
                    self.done = True
                    return i
        return -1
