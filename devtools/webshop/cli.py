"""`webshop --listen HOST:PORT`: run the sample shop."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from aiohttp import web

from webshop.app import build_app


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="webshop", description="Sample web shop with in-memory sessions.")
    p.add_argument("--listen", default="127.0.0.1:8081", metavar="HOST:PORT")
    p.add_argument("--session-timeout", type=float, default=1800.0, metavar="SECONDS")
    p.add_argument("--cookie-name", default="JSESSIONID")
    p.add_argument("--server-name", default=None, help="answer every request with X-Served-By: NAME")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    loop: asyncio.AbstractEventLoop | None = None
    if args.loop != "asyncio":
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:
            if args.loop == "uvloop":
                raise
    app = build_app(session_timeout=args.session_timeout, cookie_name=args.cookie_name, server_name=args.server_name)
    web.run_app(app, host=host.strip("[]") or "0.0.0.0", port=int(port), access_log=None, print=None, loop=loop)
    return 0
