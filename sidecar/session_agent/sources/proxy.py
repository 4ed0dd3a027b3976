"""Reverse proxy in front of the application that counts distinct active sessions by cookie.

Each client connection gets its own upstream connection, reused while both sides keep the connection
alive, so keep-alive is preserved end to end and no pool bookkeeping sits on the hot path. Heads and
bodies are forwarded byte for byte; the proxy only reads what it needs (framing, cookies). While
draining, requests of known sessions are served and sessionless ones get 503 with Retry-After, so the
load balancer or the browser retries on another VM and no session is ever created here to be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass

from session_agent import exchange, http1
from session_agent.drain import DrainState
from session_agent.sources.base import SessionStats
from session_agent.tracker import SessionKey, SessionTracker

log = logging.getLogger(__name__)

PIECE = 65536
"""Bodies are relayed in pieces of at most this size, so memory per connection stays bounded."""


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


class _UpstreamClosed(Exception):
    """The application closed a reused keep-alive connection before answering: safe to retry."""


class _ClientGone(Exception):
    """The client went away; nothing to answer."""


@dataclass(slots=True)
class _Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: bool = False

    def close(self) -> None:
        self.writer.close()


class ProxySource:
    """The `proxy` session source."""

    name = "proxy"

    def __init__(self, config: ProxyConfig, *, tracker: SessionTracker, drain: DrainState) -> None:
        self.config = config
        self.tracker = tracker
        self.drain = drain
        self.requests = 0
        self.rejected: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.StreamWriter] = set()
        self._stopping = False

    @property
    def address(self) -> tuple[str, int]:
        """The bound listen address (useful with port 0)."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve,
            self.config.listen_host,
            self.config.listen_port,
            limit=self.config.max_header_bytes,
            backlog=4096,
        )

    async def stop(self) -> None:
        """Stop listening, close idle keep-alive connections, let in-flight exchanges finish."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._idle):
            writer.close()
        if self._handlers:
            _, pending = await asyncio.wait(set(self._handlers), timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

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
                _, writer = await asyncio.open_connection(
                    self.config.upstream_host, self.config.upstream_port
                )
        except (OSError, TimeoutError) as error:
            return f"the application does not accept connections: {error.__class__.__name__}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    # ---------------------------------------------------------------- connection handling

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._handlers) >= self.config.max_connections or self._stopping:
            self._reject(writer, 503, "too many connections", "connections")
            await _linger(reader, writer)
            await _close(writer)
            return
        self._handlers.add(task)
        upstream: _Upstream | None = None
        answered_error = False
        try:
            upstream = await self._exchanges(reader, writer)
        except http1.HttpError as error:
            self._reject(writer, error.status, error.detail, _reason_label(error.status))
            answered_error = True
        except (_ClientGone, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug must cost one connection, never the agent
            log.exception("proxy connection failed")
        finally:
            self._handlers.discard(task)
            self._idle.discard(writer)
            if upstream is not None:
                upstream.close()
            if answered_error:
                await _linger(reader, writer)
            await _close(writer)

    async def _exchanges(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Upstream | None:
        """Serve requests on one client connection until either side closes it."""
        peer = writer.get_extra_info("peername")
        forwarded_for = f"X-Forwarded-For: {peer[0] if peer else 'unknown'}\r\n\r\n".encode()
        upstream: _Upstream | None = None
        try:
            while not self._stopping:
                head = await self._read_request_head(reader, writer)
                if head is None:
                    return upstream
                self.requests += 1
                presented = self._presented(head)
                if self.drain.draining and not any(self.tracker.knows(key) for _, key in presented):
                    self._refuse_while_draining(writer)
                    await _linger(reader, writer)
                    return upstream
                raw = head.raw
                if head.expect_continue:
                    raw = _without_expect(raw)
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                outgoing = raw[:-2] + forwarded_for
                upstream, response = await self._forward(reader, head, outgoing, upstream)
                self._observe(presented, response)
                if response.status == 101:
                    writer.write(response.raw)
                    await _tunnel(reader, writer, upstream.reader, upstream.writer)
                    return upstream
                await self._relay_response(head, response, upstream, writer)
                if not (head.keep_alive and response.keep_alive):
                    return upstream
            return upstream
        except BaseException:
            if upstream is not None:
                upstream.close()
            raise

    async def _read_request_head(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> http1.RequestHead | None:
        """The next request head; None when the client closed or idled out between requests."""
        config = self.config
        self._idle.add(writer)
        try:
            async with asyncio.timeout(config.keepalive_timeout):
                first = await reader.read(1)
        except TimeoutError:
            return None
        finally:
            self._idle.discard(writer)
        if not first:
            return None
        try:
            async with asyncio.timeout(config.header_timeout):
                rest = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise http1.HttpError(408, "the request head was not received in time") from None
        except asyncio.LimitOverrunError:
            raise http1.HttpError(431, "the request head is too large") from None
        except asyncio.IncompleteReadError:
            raise _ClientGone from None
        return http1.parse_request_head(first + rest, max_headers=config.max_headers)

    def _presented(self, head: http1.RequestHead) -> list[tuple[bytes, SessionKey]]:
        if not head.cookies:
            return []
        return exchange.presented_keys(self.tracker, head.cookies, self.config.cookie_names)

    def _observe(self, presented: list[tuple[bytes, SessionKey]], response: http1.ResponseHead) -> None:
        if presented or response.set_cookies:
            exchange.observe(self.tracker, presented, response.set_cookies, self.config.cookie_names)

    def _refuse_while_draining(self, writer: asyncio.StreamWriter) -> None:
        self._reject(
            writer,
            503,
            "this server is draining; retry to reach another one",
            "draining",
            (("Retry-After", str(self.config.retry_after)),),
        )

    def _reject(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        detail: str,
        reason: str,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.rejected[reason] += 1
        if not writer.is_closing():
            writer.write(http1.error_response(status, detail, extra_headers))

    # ---------------------------------------------------------------- upstream side

    async def _connect(self) -> _Upstream:
        config = self.config
        try:
            async with asyncio.timeout(config.upstream_timeout):
                reader, writer = await asyncio.open_connection(
                    config.upstream_host, config.upstream_port, limit=4 * config.max_header_bytes
                )
        except (OSError, TimeoutError) as error:
            raise http1.HttpError(502, "the application is not reachable") from error
        return _Upstream(reader, writer)

    async def _forward(
        self,
        client: asyncio.StreamReader,
        head: http1.RequestHead,
        outgoing: bytes,
        upstream: _Upstream | None,
    ) -> tuple[_Upstream, http1.ResponseHead]:
        """Send the request upstream and return the final response head (1xx interim ones relayed)."""
        framing = head.framing
        bodyless = not framing.chunked and not framing.content_length
        for attempt in range(2):
            if upstream is None or upstream.writer.is_closing():
                upstream = await self._connect()
            reused = upstream.used
            upstream.used = True
            try:
                await self._send_request(client, framing, outgoing, upstream)
                return upstream, await self._read_response_head(head, upstream, reused and bodyless)
            except _UpstreamClosed:
                upstream.close()
                upstream = None
                if attempt:
                    break
            except BaseException:
                upstream.close()
                raise
        raise http1.HttpError(502, "the application closed the connection without answering")

    async def _send_request(
        self, client: asyncio.StreamReader, framing: http1.Framing, outgoing: bytes, upstream: _Upstream
    ) -> None:
        writer = upstream.writer
        length = framing.content_length
        try:
            if not framing.chunked and not length:
                writer.write(outgoing)
                return
            async with asyncio.timeout(self.config.body_timeout) as deadline:
                if length is not None and length <= PIECE:
                    writer.write(outgoing + await client.readexactly(length))
                    return
                writer.write(outgoing)
                if framing.chunked:
                    await _copy_chunked(client, writer, deadline, self.config.body_timeout)
                else:
                    await _copy_exactly(client, writer, length or 0, deadline, self.config.body_timeout)
        except TimeoutError:
            raise http1.HttpError(408, "the request body was not received in time") from None
        except asyncio.LimitOverrunError:
            raise http1.HttpError(400, "malformed chunked request body") from None
        except asyncio.IncompleteReadError:
            raise _ClientGone from None

    async def _read_response_head(
        self, request: http1.RequestHead, upstream: _Upstream, retryable: bool
    ) -> http1.ResponseHead:
        config = self.config
        while True:
            try:
                async with asyncio.timeout(config.upstream_timeout):
                    raw = await upstream.reader.readuntil(b"\r\n\r\n")
            except TimeoutError:
                raise http1.HttpError(504, "the application did not answer in time") from None
            except asyncio.LimitOverrunError:
                raise http1.HttpError(502, "the application sent a response head that is too large") from None
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                partial = isinstance(error, asyncio.IncompleteReadError) and error.partial
                if retryable and not partial:
                    raise _UpstreamClosed from None
                raise http1.HttpError(
                    502, "the application closed the connection without answering"
                ) from None
            response = http1.parse_response_head(
                raw, request_method=request.method, max_headers=4 * config.max_headers
            )
            if 100 <= response.status < 200 and response.status != 101:
                continue  # interim responses (100 Continue was already sent by the proxy itself)
            return response

    async def _relay_response(
        self,
        request: http1.RequestHead,
        response: http1.ResponseHead,
        upstream: _Upstream,
        writer: asyncio.StreamWriter,
    ) -> None:
        framing = response.framing
        reader = upstream.reader
        timeout = self.config.upstream_timeout
        try:
            async with asyncio.timeout(timeout) as deadline:
                length = framing.content_length
                if length is not None and length <= PIECE:
                    writer.write(response.raw + await reader.readexactly(length) if length else response.raw)
                elif framing.chunked:
                    writer.write(response.raw)
                    await _copy_chunked(reader, writer, deadline, timeout)
                elif length is not None:
                    writer.write(response.raw)
                    await _copy_exactly(reader, writer, length, deadline, timeout)
                else:
                    writer.write(response.raw)
                    await _copy_until_eof(reader, writer, deadline, timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, http1.HttpError):
            # The head is already on its way: the only honest signal left is closing the connection.
            raise _ClientGone from None
        if not response.keep_alive:
            upstream.close()
        if writer.transport.get_write_buffer_size() > PIECE:
            await writer.drain()


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


async def _copy_exactly(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    length: int,
    deadline: asyncio.Timeout,
    idle: float,
) -> None:
    loop = asyncio.get_running_loop()
    while length:
        piece = await src.read(min(length, PIECE))
        if not piece:
            raise asyncio.IncompleteReadError(b"", length)
        length -= len(piece)
        dst.write(piece)
        await dst.drain()
        deadline.reschedule(loop.time() + idle)


async def _copy_chunked(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, deadline: asyncio.Timeout, idle: float
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await src.readuntil(b"\r\n")
        size = http1.chunk_size(line)
        if size == 0:
            dst.write(line)
            while True:  # trailer fields, then the final empty line
                trailer = await src.readuntil(b"\r\n")
                dst.write(trailer)
                if trailer == b"\r\n":
                    return
        if size <= PIECE:
            data = await src.readexactly(size + 2)
            if data[-2:] != b"\r\n":
                raise http1.HttpError(400, "malformed chunk")
            dst.write(line + data)
        else:
            dst.write(line)
            await _copy_exactly(src, dst, size, deadline, idle)
            if await src.readexactly(2) != b"\r\n":
                raise http1.HttpError(400, "malformed chunk")
            dst.write(b"\r\n")
        await dst.drain()
        deadline.reschedule(loop.time() + idle)


async def _copy_until_eof(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, deadline: asyncio.Timeout, idle: float
) -> None:
    loop = asyncio.get_running_loop()
    while piece := await src.read(PIECE):
        dst.write(piece)
        await dst.drain()
        deadline.reschedule(loop.time() + idle)


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while piece := await src.read(PIECE):
            dst.write(piece)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        dst.close()


async def _tunnel(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """After 101 Switching Protocols (WebSocket), relay raw bytes both ways until both sides close."""
    await asyncio.gather(_pump(client_reader, upstream_writer), _pump(upstream_reader, client_writer))


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close and discard what the client still sends, briefly.

    Closing a socket with unread input makes the kernel send RST, which can destroy the error
    response (431, 503 ...) before the client reads it.
    """
    with contextlib.suppress(OSError, TimeoutError, asyncio.LimitOverrunError, ValueError):
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(1.0):
            while await reader.read(PIECE):
                pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()
