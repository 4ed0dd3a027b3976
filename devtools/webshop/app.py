"""HTTP handlers: browse, log in, add to cart, check out; plus a few endpoints that exercise a proxy
(slow answers, chunked streams, body echo, WebSocket) and `/stats`, the application's own truth."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from webshop.sessions import Session, SessionStore

PRODUCTS: dict[str, dict[str, object]] = {
    "1": {"id": "1", "name": "Espresso cup", "price": 7.5},
    "2": {"id": "2", "name": "Moka pot", "price": 34.0},
    "3": {"id": "3", "name": "Coffee beans 1 kg", "price": 21.9},
    "4": {"id": "4", "name": "Hand grinder", "price": 59.0},
}

STORE: web.AppKey[SessionStore] = web.AppKey("store", SessionStore)
COOKIE: web.AppKey[str] = web.AppKey("cookie", str)


def _current(request: web.Request) -> tuple[Session | None, bool]:
    """The request's session, and whether it presented a session cookie the shop no longer knows."""
    session_id = request.cookies.get(request.app[COOKIE])
    session = request.app[STORE].get(session_id)
    return session, session is None and bool(session_id)


def _respond(
    request: web.Request,
    body: object,
    *,
    status: int = 200,
    set_session: Session | None = None,
    stale: bool = False,
    clear: bool = False,
) -> web.Response:
    response = web.json_response(body, status=status)
    name = request.app[COOKIE]
    if set_session is not None:
        response.set_cookie(name, set_session.id, path="/", httponly=True, samesite="Lax")
    elif stale or clear:
        # Tell the browser (and any proxy counting sessions) that this id is dead.
        response.del_cookie(name, path="/")
    return response


async def index(request: web.Request) -> web.Response:
    session, stale = _current(request)
    user = session.user if session else None
    return _respond(request, {"products": list(PRODUCTS.values()), "user": user}, stale=stale)


async def product(request: web.Request) -> web.Response:
    item = PRODUCTS.get(request.match_info["id"])
    if item is None:
        raise web.HTTPNotFound(text="no such product")
    _, stale = _current(request)
    return _respond(request, item, stale=stale)


async def login(request: web.Request) -> web.Response:
    data = await _body(request)
    user = str(data.get("user", "")).strip()
    if not user:
        return _respond(request, {"error": "user is required"}, status=400)
    session, _ = _current(request)
    store = request.app[STORE]
    session = store.rotate(session) if session is not None else store.create()
    session.user = user
    return _respond(request, {"user": user}, set_session=session)


async def logout(request: web.Request) -> web.Response:
    session, _ = _current(request)
    if session is not None:
        request.app[STORE].delete(session)
    return _respond(request, {"logged_out": session is not None}, clear=True)


async def cart(request: web.Request) -> web.Response:
    session, stale = _current(request)
    if session is None:
        return _respond(request, {"items": {}, "total": 0.0}, stale=stale)
    return _respond(request, _cart_body(session))


async def add_to_cart(request: web.Request) -> web.Response:
    data = await _body(request)
    product_id = str(data.get("product", ""))
    try:
        quantity = int(str(data.get("quantity", 1)))
    except ValueError:
        quantity = 0
    if product_id not in PRODUCTS or quantity <= 0:
        return _respond(request, {"error": "unknown product or bad quantity"}, status=400)
    session, _ = _current(request)
    created = session is None
    if session is None:
        session = request.app[STORE].create()  # an anonymous cart, like most shops
    session.cart[product_id] = session.cart.get(product_id, 0) + quantity
    return _respond(request, _cart_body(session), set_session=session if created else None)


async def checkout(request: web.Request) -> web.Response:
    session, stale = _current(request)
    if session is None or session.user is None:
        return _respond(request, {"error": "log in first"}, status=401, stale=stale)
    if not session.cart:
        return _respond(request, {"error": "the cart is empty"}, status=400)
    order = {"order": secrets.token_hex(6), **_cart_body(session)}
    session.orders.append(str(order["order"]))
    session.cart.clear()
    return _respond(request, order)


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"active_sessions": request.app[STORE].count()})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"healthy": True})


async def slow(request: web.Request) -> web.Response:
    """Answers after `ms` milliseconds: an in-flight request a drain must not cut."""
    delay = min(float(request.query.get("ms", "100")), 60_000.0) / 1000
    await asyncio.sleep(delay)
    session, stale = _current(request)
    return _respond(request, {"slept_ms": delay * 1000, "session": session is not None}, stale=stale)


async def stream(request: web.Request) -> web.StreamResponse:
    """A chunked response written piece by piece."""
    chunks = min(int(request.query.get("chunks", "5")), 10_000)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for i in range(chunks):
        await response.write(f"chunk {i}\n".encode())
        await asyncio.sleep(0)
    await response.write_eof()
    return response


async def echo(request: web.Request) -> web.StreamResponse:
    """Streams the request body back, so a proxy's body relay can be checked byte for byte."""
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for piece in request.content.iter_any():
        await response.write(piece)
    await response.write_eof()
    return response


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(f"echo: {message.data}")
        elif message.type == WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


async def _body(request: web.Request) -> dict[str, object]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return dict(await request.post())


def _cart_body(session: Session) -> dict[str, object]:
    total = sum(float(str(PRODUCTS[pid]["price"])) * qty for pid, qty in session.cart.items())
    return {"items": dict(session.cart), "total": round(total, 2), "user": session.user}


def served_by(name: str) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An `on_response_prepare` hook naming this server in `X-Served-By`, so tests can tell which VM answered
    whatever load balancer is in front (the demo's HAProxy sets the same header itself)."""

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Served-By", name)

    return hook


def build_app(
    *,
    session_timeout: float = 1800.0,
    cookie_name: str = "JSESSIONID",
    clock: Callable[[], float] = time.monotonic,
    server_name: str | None = None,
) -> web.Application:
    app = web.Application()
    if server_name:
        app.on_response_prepare.append(served_by(server_name))
    app[STORE] = SessionStore(timeout=session_timeout, clock=clock)
    app[COOKIE] = cookie_name
    app.add_routes(
        [
            web.get("/", index),
            web.get("/products/{id}", product),
            web.post("/login", login),
            web.post("/logout", logout),
            web.get("/cart", cart),
            web.post("/cart", add_to_cart),
            web.post("/checkout", checkout),
            web.get("/stats", stats),
            web.get("/healthz", healthz),
            web.get("/slow", slow),
            web.get("/stream", stream),
            web.post("/echo", echo),
            web.get("/ws", websocket),
        ]
    )
    return app
