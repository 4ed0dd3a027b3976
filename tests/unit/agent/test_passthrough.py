"""What must pass through the proxy unchanged: keep-alive, streamed bodies, chunked answers, WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from session_agent.sources.proxy import ProxySource
from tests.unit.agent.conftest import RunningAgent, StartAgent, raw_exchange


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


async def test_keep_alive_serves_many_requests_on_one_connection(proxy: RunningAgent) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(20):
            writer.write(b"GET /products/2 HTTP/1.1\r\nHost: shop\r\nCookie: JSESSIONID=K1\r\n\r\n")
            head, body = await _read_response(reader)
            assert head.startswith(b"HTTP/1.1 200")
            assert b"Moka pot" in body
    finally:
        writer.close()
    assert await proxy.metric("webapp_requests_total") == 20
    # K1 is no session of the shop, and the shop says so (it clears the cookie): never counted.
    assert await proxy.metric("webapp_active_sessions") == 0
    assert await proxy.metric("webapp_sessions_started_total") == 0


async def test_chunked_response_streams_through(proxy: RunningAgent) -> None:
    async with aiohttp.ClientSession() as client, client.get(f"{proxy.url}/stream?chunks=500") as response:
        assert response.headers.get("Transfer-Encoding") == "chunked"
        text = await response.text()
    assert text.splitlines() == [f"chunk {i}" for i in range(500)]


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)


async def test_streamed_request_body_of_several_megabytes_is_relayed_intact(proxy: RunningAgent) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    async with aiohttp.ClientSession() as client:
        # chunked upload (unknown length) ...
        async with client.post(f"{proxy.url}/echo", data=_chunks(payload, 100_000)) as response:
            assert await response.read() == payload
        # ... and a Content-Length upload larger than one relay piece
        async with client.post(f"{proxy.url}/echo", data=io.BytesIO(payload)) as response:
            assert await response.read() == payload


async def test_websocket_upgrade_is_tunnelled(proxy: RunningAgent) -> None:
    async with aiohttp.ClientSession() as client, client.ws_connect(f"{proxy.url}/ws") as ws:
        for i in range(5):
            await ws.send_str(f"hello {i}")
            assert (await ws.receive_str()) == f"echo: hello {i}"
        await ws.send_bytes(b"\x00\x01binary")
        assert (await ws.receive_bytes()) == b"\x00\x01binary"


async def test_head_and_expect_continue(proxy: RunningAgent) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])
    answer = await raw_exchange(
        port,
        b"HEAD /products/1 HTTP/1.1\r\nHost: shop\r\n\r\n"
        b"GET /products/3 HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.count(b"HTTP/1.1 200") == 2  # the HEAD answer has no body, the pipelined GET follows
    assert b"Coffee beans" in answer

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"user": "eve"}'
    writer.write(
        b"POST /login HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(body)
    rest = await reader.read(-1)
    writer.close()
    assert rest.startswith(b"HTTP/1.1 200")
    assert b"JSESSIONID=" in rest
    assert await proxy.metric("webapp_active_sessions") == 1


@pytest.mark.parametrize("piece", [1, 3, 7])
async def test_request_head_arriving_in_small_pieces(proxy: RunningAgent, piece: int) -> None:
    request = b"GET /products/1 HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
    try:
        for i in range(0, len(request), piece):
            writer.write(request[i : i + piece])
            await writer.drain()
            await asyncio.sleep(0.001)
        answer = await reader.read(-1)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"Espresso cup" in answer


async def test_client_address_is_forwarded(proxy: RunningAgent) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])
    answer = await raw_exchange(port, b"GET /products/4 HTTP/1.0\r\nHost: shop\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") or answer.startswith(b"HTTP/1.0 200")
    assert b"Hand grinder" in answer


def _buffered(agent: RunningAgent) -> int:
    """Bytes the proxy holds in its socket write buffers right now (both directions)."""
    source = agent.agent.source
    assert isinstance(source, ProxySource)
    total = 0
    for connection in source.connections:
        if connection.transport is not None:
            total += connection.transport.get_write_buffer_size()
        upstream = connection.upstream
        if upstream is not None and upstream.transport is not None:
            total += upstream.transport.get_write_buffer_size()
    return total


BIG = 32 * 1024 * 1024


async def test_slow_reader_does_not_make_the_proxy_buffer_a_large_response(start_agent: StartAgent) -> None:
    async def fast_app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n".encode())
        piece = b"x" * 65536
        for _ in range(BIG // len(piece)):
            writer.write(piece)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(fast_app, "127.0.0.1", 0)
    try:
        agent = await start_agent(upstream=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        reader, writer = await asyncio.open_connection("127.0.0.1", int(agent.url.rsplit(":", 1)[1]), limit=65536)
        writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.3)  # the client reads nothing meanwhile
        assert _buffered(agent) < 4 * 1024 * 1024
        await reader.readuntil(b"\r\n\r\n")
        received = 0
        while received < BIG:
            received += len(await reader.read(1 << 20))
        assert received == BIG
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_slow_application_does_not_make_the_proxy_buffer_a_large_upload(start_agent: StartAgent) -> None:
    reading = asyncio.Event()
    received: list[int] = []

    async def slow_app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reading.wait()
        total = 0
        while total < BIG:
            total += len(await reader.read(1 << 20))
        received.append(total)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow_app, "127.0.0.1", 0)
    try:
        agent = await start_agent(upstream=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        reader, writer = await asyncio.open_connection("127.0.0.1", int(agent.url.rsplit(":", 1)[1]))
        writer.write(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {BIG}\r\n\r\n".encode())

        async def upload() -> None:
            piece = b"y" * 65536
            for _ in range(BIG // len(piece)):
                writer.write(piece)
                await writer.drain()

        sending = asyncio.ensure_future(upload())
        await asyncio.sleep(0.3)  # the application reads nothing meanwhile
        assert _buffered(agent) < 4 * 1024 * 1024
        reading.set()
        await sending
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 204")
        assert received == [BIG]
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_pipelined_requests_with_bodies_are_answered_in_order(proxy: RunningAgent) -> None:
    body = b"0123456789" * 1000
    pipeline = (
        b"POST /echo HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        + b"GET /products/2 HTTP/1.1\r\nHost: shop\r\n\r\n"
        + b"POST /echo HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        + b"GET /products/3 HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
    )
    answer = await raw_exchange(int(proxy.url.rsplit(":", 1)[1]), pipeline)
    assert answer.count(b"HTTP/1.1 200 OK") == 4
    first_echo, moka, second_echo, beans = (answer.index(x) for x in (body[:50], b"Moka pot", b"abc", b"Coffee beans"))
    assert first_echo < moka < second_echo < beans


async def test_application_closing_a_reused_keep_alive_connection_is_retried(start_agent: StartAgent) -> None:
    """The application answers one request per connection and drops the next one unanswered, as a server
    whose keep-alive timeout expires just as a request arrives does: the proxy resends it on a fresh
    connection (it has no body, so that is safe) and the client never sees the failure."""
    connections = 0

    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # the next request: dropped
        writer.close()

    server = await asyncio.start_server(one_per_connection, "127.0.0.1", 0)
    try:
        agent = await start_agent(upstream=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        reader, writer = await asyncio.open_connection("127.0.0.1", int(agent.url.rsplit(":", 1)[1]))
        try:
            for _ in range(3):
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                head, body = await _read_response(reader)
                assert head.startswith(b"HTTP/1.1 200")
                assert body == b"ok"
        finally:
            writer.close()
        assert connections == 3
        assert await agent.metric("webapp_requests_total") == 3
    finally:
        server.close()
        await server.wait_closed()
