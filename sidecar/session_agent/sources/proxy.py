"""Reverse proxy in front of the application that counts distinct active sessions by cookie.

Built on asyncio protocols (callbacks) rather than streams: on the hot path a request costs two head
parses, two socket writes and no coroutine, task or timer, which is what lets a Python proxy keep up
with the application it fronts. Each client connection is paired with its own upstream connection,
reused while both sides keep the connection alive. Heads and bodies are forwarded byte for byte; the
proxy reads only what it needs (framing, cookies). Deadlines are plain numbers checked by one
sweeper task, so arming a timeout costs an attribute store.

While draining, requests of known sessions are served and sessionless ones get 503 with Retry-After,
so the load balancer or the browser retries on another VM and no session is created here to be lost.
Both drain modes do exactly this here (they differ only in /readyz), and the check runs only while
draining: a request of a held session costs one dictionary lookup more then, and nothing otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import cast

from session_agent import exchange, http1
from session_agent.drain import DRAIN_MODES, DrainState
from session_agent.sources.base import SessionStats
from session_agent.tracker import SessionKey, SessionTracker

log = logging.getLogger(__name__)

PENDING_LIMIT = 256 * 1024
"""Bytes of request held while the upstream connection is being opened, before the client is paused."""

LINGER_SECONDS = 1.0
"""After an error response, how long unread client input is drained before closing (see _fail)."""


@dataclass(frozen=True)
class ProxyConfig:
    listen_host: str
    listen_port: int
    upstream_host: str
    upstream_port: int
    cookie_names: frozenset[bytes]
    max_header_bytes: int = 16384
    max_headers: int = 100
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    body_timeout: float = 60.0
    upstream_timeout: float = 60.0
    max_connections: int = 10000
    retry_after: int = 5
    shutdown_grace: float = 30.0


# Client-side states of a connection.
IDLE, HEAD, REQUEST_BODY, REQUEST_SENT, TUNNEL, LINGER, CLOSED = range(7)
# Upstream-side states.
UP_IDLE, UP_HEAD, UP_BODY, UP_TUNNEL, UP_CLOSED = range(5)


class ProxySource:
    """The `proxy` session source."""

    name = "proxy"
    drain_modes: tuple[str, ...] = DRAIN_MODES
    drain_limitation = ""

    def __init__(self, config: ProxyConfig, *, tracker: SessionTracker, drain: DrainState) -> None:
        self.config = config
        self.tracker = tracker
        self.drain = drain
        self.requests = 0
        self.rejected: Counter[str] = Counter()
        self.stopping = False
        self.connections: set[_ClientConnection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._all_closed = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound listen address (useful with port 0)."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(
            lambda: _ClientConnection(self), self.config.listen_host, self.config.listen_port, backlog=4096
        )
        self._sweeper = self.loop.create_task(self._sweep())

    async def stop(self) -> None:
        """Stop listening, close idle keep-alive connections, let in-flight exchanges finish."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.state in (IDLE, LINGER):
                connection.close()
        if self.connections:
            self._all_closed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.shutdown_grace):
                    await self._all_closed.wait()
        for connection in list(self.connections):
            connection.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    def forget(self, connection: _ClientConnection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._all_closed.set()

    async def _sweep(self) -> None:
        """Enforce every connection's deadline; one task for all instead of a timer per request."""
        c = self.config
        interval = min(0.5, c.header_timeout / 3, c.keepalive_timeout / 3, c.body_timeout / 3, c.upstream_timeout / 3)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for connection in list(self.connections):
                if connection.deadline <= now:
                    try:
                        connection.on_deadline()
                    except Exception:  # one broken connection must not stop the sweeper
                        log.exception("proxy timeout handling failed")
                        connection.abort()

    async def refresh(self) -> None:
        return None

    def stats(self) -> SessionStats:
        t = self.tracker
        return SessionStats(
            active=t.active(),
            started=t.started,
            expired=t.expired,
            logged_out=t.logged_out,
            evicted=t.evicted,
            requests=self.requests,
            rejected=dict(self.rejected),
        )

    async def unready_reason(self) -> str | None:
        try:
            async with asyncio.timeout(2.0):
                _, writer = await asyncio.open_connection(self.config.upstream_host, self.config.upstream_port)
        except (OSError, TimeoutError) as error:
            return f"the application does not accept connections: {error.__class__.__name__}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None


class _ClientConnection(asyncio.Protocol):
    """One client connection and the exchange in progress on it."""

    def __init__(self, proxy: ProxySource) -> None:
        self.proxy = proxy
        self.config = proxy.config
        assert proxy.loop is not None
        self.loop = proxy.loop
        self.transport: asyncio.Transport | None = None
        self.state = IDLE
        self.deadline = math.inf
        self.buffer = bytearray()
        self.forwarded_for = b"X-Forwarded-For: unknown\r\n\r\n"
        self.upstream: _UpstreamConnection | None = None
        # the exchange in progress
        self.request: http1.RequestHead | None = None
        self.presented: list[tuple[bytes, SessionKey]] = []
        self.request_scanner: http1.BodyScanner | None = None
        self.retry_bytes: bytes | None = None
        self.retried = False
        self.response_started = False
        self.client_eof = False
        self.reading_paused = False

    # ------------------------------------------------------------ transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self.transport = transport = cast(asyncio.Transport, transport)
        proxy = self.proxy
        if len(proxy.connections) >= self.config.max_connections or proxy.stopping:
            proxy.connections.add(self)
            self._fail(503, "too many connections", "connections")
            return
        proxy.connections.add(self)
        peer = transport.get_extra_info("peername")
        if peer:
            self.forwarded_for = f"X-Forwarded-For: {peer[0]}\r\n\r\n".encode()
        self.deadline = self.loop.time() + self.config.keepalive_timeout

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == TUNNEL:
            assert self.upstream is not None
            self.upstream.write(data)
        elif state == REQUEST_BODY:
            self._relay_request_body(data)
        elif state in (LINGER, CLOSED):
            return
        elif state == IDLE and not self.buffer and len(data) > 4 and data.find(b"\r\n\r\n") == len(data) - 4:
            self._next_request(data)  # the common case: exactly one bodyless request head, no copies
        else:
            self.buffer += data
            if state in (IDLE, HEAD):
                self._next_request()
            elif len(self.buffer) > 2 * self.config.max_header_bytes:
                self.pause_reading()  # a client pipelining faster than the application answers

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.state == TUNNEL and self.upstream is not None:
            if self.upstream.eof:
                self.close()  # both directions are finished
                return False
            self.upstream.write_eof()
            return True
        if self.state == REQUEST_SENT:
            return True  # a half-closed client still gets its answer
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        self.proxy.forget(self)

    def pause_writing(self) -> None:
        """The client reads slower than the application answers: stop reading the application."""
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True

    def resume_reading(self) -> None:
        if self.transport is not None and self.reading_paused:
            self.transport.resume_reading()
            self.reading_paused = False

    # ------------------------------------------------------------ requests

    def _next_request(self, whole_head: bytes | None = None) -> None:
        """Parse the next request head from the buffer (or `whole_head`, exactly one head), if it is
        complete, and send it upstream."""
        config = self.config
        buffer = self.buffer
        if whole_head is not None:
            raw = whole_head
            if len(raw) > config.max_header_bytes:
                self._fail(431, "the request head is too large", "header_too_large")
                return
        else:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > config.max_header_bytes:
                    self._fail(431, "the request head is too large", "header_too_large")
                elif buffer and self.state == IDLE:
                    self.state = HEAD  # the head deadline starts at its first byte and is never extended
                    self.deadline = self.loop.time() + config.header_timeout
                return
            end += 4
            if end > config.max_header_bytes:
                self._fail(431, "the request head is too large", "header_too_large")
                return
            raw = bytes(buffer[:end])
            del buffer[:end]
        try:
            request = http1.parse_request_head(raw, max_headers=config.max_headers)
        except http1.HttpError as error:
            self._fail(error.status, error.detail, _reason_label(error.status))
            return
        proxy = self.proxy
        proxy.requests += 1
        presented = (
            exchange.presented_keys(proxy.tracker, request.cookies, config.cookie_names) if request.cookies else []
        )
        if proxy.drain.draining and not any(proxy.tracker.knows(key) for _, key in presented):
            self._fail(
                503,
                "this server is draining; retry to reach another one",
                "draining",
                (("Retry-After", str(config.retry_after)),),
            )
            return
        if request.expect_continue:
            raw = _without_expect(raw)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.request = request
        self.presented = presented
        self.response_started = False
        self.retried = False
        outgoing = raw[:-2] + self.forwarded_for
        framing = request.framing
        if framing.chunked:
            scanner: http1.BodyScanner = http1.ChunkedScanner()
        else:
            scanner = http1.LengthScanner(framing.content_length or 0)
        self.request_scanner = scanner
        self.retry_bytes = outgoing if scanner.done else None
        if buffer and not scanner.done:
            try:
                body_end = scanner.feed(buffer, 0)
            except http1.HttpError as error:
                self._fail(error.status, error.detail, "bad_request")
                return
            cut = len(buffer) if body_end < 0 else body_end
            outgoing += bytes(buffer[:cut])
            del buffer[:cut]
        if scanner.done:
            self.state = REQUEST_SENT
            self.deadline = self.loop.time() + config.upstream_timeout
        else:
            self.state = REQUEST_BODY
            self.deadline = self.loop.time() + config.body_timeout
        self._send_upstream(outgoing)

    def _relay_request_body(self, data: bytes) -> None:
        scanner = self.request_scanner
        assert scanner is not None and self.upstream is not None
        try:
            end = scanner.feed(data, 0)
        except http1.HttpError as error:
            self._fail(error.status, error.detail, "bad_request")
            return
        if end < 0:
            self.upstream.write(data)
            if not self.response_started:
                self.deadline = self.loop.time() + self.config.body_timeout
            return
        self.upstream.write(data[:end] if end < len(data) else data)
        self.buffer += data[end:]
        self.state = REQUEST_SENT
        if not self.response_started:
            self.deadline = self.loop.time() + self.config.upstream_timeout

    def _send_upstream(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is None or upstream.state == UP_CLOSED:
            upstream = self.upstream = _UpstreamConnection(self)
            upstream.connect()
        upstream.begin_exchange()
        upstream.write(data)

    # ------------------------------------------------------------ responses (called by the upstream side)

    def on_response_head(self, response: http1.ResponseHead) -> None:
        self.response_started = True
        if self.presented or response.set_cookies:
            exchange.observe(self.proxy.tracker, self.presented, response.set_cookies, self.config.cookie_names)
        self.deadline = self.loop.time() + self.config.upstream_timeout

    def start_tunnel(self) -> None:
        """101 Switching Protocols (WebSocket): from now on, raw bytes both ways."""
        self.state = TUNNEL
        self.deadline = math.inf
        if self.buffer and self.upstream is not None:
            self.upstream.write(bytes(self.buffer))
            self.buffer.clear()
        self.resume_reading()

    def write(self, data: bytes | bytearray) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def upstream_finished_tunnel(self) -> bool:
        """The application half-closed a tunnel; True while the client still sends."""
        if self.client_eof:
            self.close()
            return False
        if self.transport is not None and self.transport.can_write_eof() and not self.transport.is_closing():
            self.transport.write_eof()
        return True

    def on_response_body(self) -> None:
        self.deadline = self.loop.time() + self.config.upstream_timeout

    def on_response_complete(self, upstream_reusable: bool) -> None:
        request = self.request
        assert request is not None and self.upstream is not None
        response_keep_alive = upstream_reusable
        if not upstream_reusable:
            self.upstream.close()
            self.upstream = None
        if self.state != REQUEST_SENT:
            # The application answered before the whole request body arrived: the connection is
            # out of step, so it cannot carry another request.
            self.close()
            return
        if not (request.keep_alive and response_keep_alive) or self.client_eof or self.proxy.stopping:
            self.close()
            return
        self.state = IDLE
        self.request = None
        self.presented = []
        self.deadline = self.loop.time() + self.config.keepalive_timeout
        self.resume_reading()
        if self.buffer:
            self._next_request()

    def on_upstream_lost(self, *, answered_nothing: bool, reused: bool, reachable: bool) -> None:
        """The upstream connection ended before the exchange was complete."""
        self.upstream = None
        if self.state in (CLOSED, LINGER):
            return
        if self.response_started:
            self.close()  # the head is already out: closing is the only honest signal left
            return
        if answered_nothing and reused and self.retry_bytes is not None and not self.retried:
            # A keep-alive connection the application had already closed: resend on a fresh one.
            self.retried = True
            self._send_upstream(self.retry_bytes)
            return
        if not reachable:
            self._fail(502, "the application is not reachable", "upstream_unavailable")
        else:
            self._fail(502, "the application closed the connection without answering", "upstream_unavailable")

    def on_bad_response(self, error: http1.HttpError) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        if self.response_started:
            self.close()
        else:
            self._fail(502, error.detail, "upstream_unavailable")

    # ------------------------------------------------------------ endings

    def on_deadline(self) -> None:
        state = self.state
        if state in (IDLE, LINGER):
            self.close()
        elif state == HEAD:
            self._fail(408, "the request head was not received in time", "timeout")
        elif self.response_started:
            self.abort()
        elif state == REQUEST_BODY:
            self._fail(408, "the request body was not received in time", "timeout")
        elif state == REQUEST_SENT:
            self._fail(504, "the application did not answer in time", "upstream_timeout")
        else:
            self.deadline = math.inf

    def _fail(self, status: int, detail: str, reason: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        """Answer an error ourselves and close.

        The socket is half-closed and unread input drained briefly first: closing with unread data
        makes the kernel send RST, which can destroy the error response before the client reads it.
        """
        self.proxy.rejected[reason] += 1
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(http1.error_response(status, detail, extra))
        self.state = LINGER
        self.buffer.clear()
        self.deadline = self.loop.time() + LINGER_SECONDS
        self.resume_reading()
        if self.client_eof:
            transport.close()
        elif transport.can_write_eof():
            transport.write_eof()

    def close(self) -> None:
        """Close after what was written is flushed."""
        self.state = CLOSED
        self.deadline = math.inf
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.state = CLOSED
        self.deadline = math.inf
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        if self.transport is not None:
            self.transport.abort()


class _UpstreamConnection(asyncio.Protocol):
    """The application side of one client connection."""

    def __init__(self, client: _ClientConnection) -> None:
        self.client = client
        self.config = client.config
        self.transport: asyncio.Transport | None = None
        self.state = UP_IDLE
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.buffer = bytearray()
        self.scanner: http1.BodyScanner | None = None
        self.response: http1.ResponseHead | None = None
        self.exchanges = 0
        self.answered = False
        self.eof = False
        self.reading_paused = False
        self._connect_task: asyncio.Task[None] | None = None

    def connect(self) -> None:
        self._connect_task = self.client.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            await self.client.loop.create_connection(lambda: self, self.config.upstream_host, self.config.upstream_port)
        except OSError:
            if self.state != UP_CLOSED:
                self.state = UP_CLOSED
                if self.client.upstream is self:
                    self.client.on_upstream_lost(answered_nothing=True, reused=False, reachable=False)

    def begin_exchange(self) -> None:
        self.exchanges += 1
        self.state = UP_HEAD
        self.answered = False

    def write(self, data: bytes | bytearray) -> None:
        if self.transport is not None:
            if not self.transport.is_closing():
                self.transport.write(data)
        elif self.state != UP_CLOSED:
            self.pending.append(bytes(data))
            self.pending_bytes += len(data)
            if self.pending_bytes > PENDING_LIMIT:
                self.client.pause_reading()  # still connecting: hold the client's body back

    def pause_writing(self) -> None:
        """The application reads the request body slower than the client sends it."""
        self.client.pause_reading()

    def resume_writing(self) -> None:
        self.client.resume_reading()

    def write_eof(self) -> None:
        if self.transport is not None and self.transport.can_write_eof() and not self.transport.is_closing():
            self.transport.write_eof()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True

    def resume_reading(self) -> None:
        if self.transport is not None and self.reading_paused:
            self.transport.resume_reading()
            self.reading_paused = False

    def close(self) -> None:
        self.state = UP_CLOSED
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------ transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        if self.state == UP_CLOSED:
            transport.close()
            return
        if self.pending:
            transport.write(b"".join(self.pending))
            self.pending.clear()
            self.pending_bytes = 0
            self.client.resume_reading()

    def data_received(self, data: bytes) -> None:
        state = self.state
        self.answered = True
        if state == UP_BODY:
            self._relay_body(data)
        elif state == UP_TUNNEL:
            self.client.write(data)
        elif state == UP_HEAD:
            self._response_head(data)
        # UP_IDLE: bytes nobody asked for; UP_CLOSED: too late. Either way the connection is done.
        elif state == UP_IDLE:
            self.close()

    def _response_head(self, incoming: bytes) -> None:
        """Parse the response head once complete, then start relaying; the common case (a whole small
        response in one read) is written to the client as the very bytes received, without copies."""
        client = self.client
        if self.buffer:
            self.buffer += incoming
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = incoming
        start = 0
        while True:
            end = data.find(b"\r\n\r\n", start)
            if end < 0:
                if len(data) - start > 4 * self.config.max_header_bytes:
                    client.on_bad_response(
                        http1.HttpError(502, "the application sent a response head that is too large")
                    )
                else:
                    self.buffer += data[start:]
                return
            end += 4
            assert client.request is not None
            try:
                response = http1.parse_response_head(
                    data[start:end], request_method=client.request.method, max_headers=4 * self.config.max_headers
                )
            except http1.HttpError as error:
                client.on_bad_response(error)
                return
            if 100 <= response.status < 200 and response.status != 101:
                start = end  # interim answers; the proxy sent its own 100 Continue already
                continue
            break
        self.response = response
        client.on_response_head(response)
        if client.state in (CLOSED, LINGER):
            return
        if response.status == 101:
            self.state = UP_TUNNEL
            client.write(data[start:] if start else data)
            client.start_tunnel()
            return
        framing = response.framing
        if framing.chunked:
            self.scanner = http1.ChunkedScanner()
        elif framing.content_length is not None:
            self.scanner = http1.LengthScanner(framing.content_length)
        else:
            self.scanner = http1.UntilCloseScanner()
        self.state = UP_BODY
        if self.scanner.done:
            client.write(response.raw)
            self._complete(extra=data[end:])
            return
        self._relay_body(data, body_start=end, write_from=start)

    def _relay_body(self, data: bytes, body_start: int = 0, write_from: int = 0) -> None:
        """Forward data[write_from:] up to the end of the body (found from body_start) to the client."""
        scanner = self.scanner
        assert scanner is not None
        try:
            end = scanner.feed(data, body_start)
        except http1.HttpError:
            self.client.on_bad_response(http1.HttpError(502, "the application sent a malformed body"))
            return
        if end < 0:
            self.client.write(data[write_from:] if write_from else data)
            self.client.on_response_body()
            return
        self.client.write(data if write_from == 0 and end == len(data) else data[write_from:end])
        self._complete(extra=data[end:])

    def _complete(self, *, extra: bytes) -> None:
        assert self.response is not None
        reusable = self.response.keep_alive and not extra and self.state != UP_CLOSED
        self.state = UP_IDLE if reusable else UP_CLOSED
        self.response = None
        self.scanner = None
        self.client.on_response_complete(reusable)

    def eof_received(self) -> bool:
        self.eof = True
        if self.state == UP_TUNNEL:
            return self.client.upstream_finished_tunnel()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        self.state = UP_CLOSED
        client = self.client
        if client.upstream is not self:
            return
        if state == UP_TUNNEL:
            client.close()
        elif state == UP_BODY and isinstance(self.scanner, http1.UntilCloseScanner):
            client.upstream = None
            client.close()  # the body ended with the connection, as announced: the exchange is complete
        elif state in (UP_HEAD, UP_BODY):
            client.on_upstream_lost(answered_nothing=not self.answered, reused=self.exchanges > 1, reachable=True)
        else:
            client.upstream = None


def _reason_label(status: int) -> str:
    return {
        400: "bad_request",
        408: "timeout",
        431: "header_too_large",
        502: "upstream_unavailable",
        504: "upstream_timeout",
        505: "bad_request",
    }.get(status, str(status))


def _without_expect(raw: bytes) -> bytes:
    """The proxy answers 100-continue itself, so the application must not wait for a body twice."""
    lines = raw[:-4].split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"expect:")]
    return b"\r\n".join(kept) + b"\r\n\r\n"
