"""`session-agent`: the command line the golden image's systemd unit runs.

    session-agent --source proxy --listen HOST:PORT --upstream URL --metrics-listen HOST:PORT \\
        [--cookie NAME]... [--idle-timeout SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from session_agent import agent, cookies, logs

log = logging.getLogger("session_agent")


def host_port(value: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all addresses)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="session-agent",
        description="Count a web application's active sessions and export them for the operator.",
    )
    p.add_argument("--source", choices=agent.SOURCES, default="proxy", help="where the count comes from")
    p.add_argument(
        "--metrics-listen",
        type=host_port,
        default=("0.0.0.0", 9100),
        metavar="HOST:PORT",
        help="/metrics, /healthz, /readyz, /drain (and /push) listener (default 0.0.0.0:9100)",
    )
    p.add_argument("--drain-token-file", type=Path, help="file holding the bearer token for POST/DELETE /drain")
    p.add_argument(
        "--drain-token-env",
        default="SESSION_AGENT_DRAIN_TOKEN",
        metavar="VAR",
        help="environment variable holding the token when no file is given",
    )
    p.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop; auto uses uvloop when it is installed",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    g = p.add_argument_group("proxy source")
    g.add_argument(
        "--listen",
        type=host_port,
        default=("0.0.0.0", 8080),
        metavar="HOST:PORT",
        help="where users (the load balancer) connect (default 0.0.0.0:8080)",
    )
    g.add_argument("--upstream", metavar="URL", help="the application, e.g. http://127.0.0.1:8081")
    g.add_argument(
        "--cookie",
        action="append",
        metavar="NAME",
        dest="cookies",
        help=f"session cookie name, repeatable (default {' '.join(cookies.DEFAULT_COOKIE_NAMES)})",
    )
    g.add_argument(
        "--idle-timeout",
        type=positive,
        default=1800.0,
        metavar="SECONDS",
        help="the application's session timeout (default 1800)",
    )
    g.add_argument(
        "--max-sessions",
        type=int,
        default=100_000,
        help="cap on tracked sessions; beyond it the least recently used is evicted",
    )
    g.add_argument("--max-header-bytes", type=int, default=16384, help="request head limit (431 beyond)")
    g.add_argument("--max-headers", type=int, default=100, help="header field count limit (431 beyond)")
    g.add_argument("--header-timeout", type=positive, default=10.0, help="seconds to receive a request head (408)")
    g.add_argument("--keepalive-timeout", type=positive, default=75.0, help="idle seconds between requests")
    g.add_argument("--body-timeout", type=positive, default=60.0, help="idle seconds while receiving a body")
    g.add_argument(
        "--upstream-timeout",
        type=positive,
        default=60.0,
        help="idle seconds waiting for the application (504)",
    )
    g.add_argument("--max-connections", type=int, default=10_000, help="client connections (503 beyond)")
    g.add_argument("--retry-after", type=int, default=5, help="Retry-After of the 503 sent while draining")
    g.add_argument(
        "--shutdown-grace",
        type=positive,
        default=30.0,
        help="on SIGTERM, seconds in-flight requests get to finish",
    )

    g = p.add_argument_group("tomcat source")
    g.add_argument("--tomcat-manager-url", default="http://127.0.0.1:8080/manager/text")
    g.add_argument("--tomcat-context", default="/", help="context path of the application, e.g. /shop")
    g.add_argument("--tomcat-command", choices=("list", "sessions"), default="list")
    g.add_argument("--tomcat-user", help="manager user with the manager-script role")
    g.add_argument("--tomcat-password-file", type=Path)

    g = p.add_argument_group("connections source")
    g.add_argument("--app-port", type=int, help="the application's listening port")
    g.add_argument("--proc-net", type=Path, default=Path("/proc/net"))
    g.add_argument("--distinct-peers", action="store_true", help="count distinct client addresses instead")

    g = p.add_argument_group("push source")
    g.add_argument("--push-allow-remote", action="store_true", help="accept POST /push from non-loopback peers")
    g.add_argument("--push-stale-after", type=positive, help="seconds without a push before the source is down")
    return p


def config_from(args: argparse.Namespace) -> agent.AgentConfig:
    return agent.AgentConfig(
        source=args.source,
        metrics_host=args.metrics_listen[0],
        metrics_port=args.metrics_listen[1],
        listen_host=args.listen[0],
        listen_port=args.listen[1],
        upstream=args.upstream,
        cookie_names=tuple(args.cookies) if args.cookies else cookies.DEFAULT_COOKIE_NAMES,
        idle_timeout=args.idle_timeout,
        max_sessions=args.max_sessions,
        max_header_bytes=args.max_header_bytes,
        max_headers=args.max_headers,
        header_timeout=args.header_timeout,
        keepalive_timeout=args.keepalive_timeout,
        body_timeout=args.body_timeout,
        upstream_timeout=args.upstream_timeout,
        max_connections=args.max_connections,
        retry_after=args.retry_after,
        shutdown_grace=args.shutdown_grace,
        drain_token_file=args.drain_token_file,
        drain_token_env=args.drain_token_env,
        tomcat_manager_url=args.tomcat_manager_url,
        tomcat_context=args.tomcat_context,
        tomcat_command=args.tomcat_command,
        tomcat_user=args.tomcat_user,
        tomcat_password_file=args.tomcat_password_file,
        app_port=args.app_port,
        proc_net=args.proc_net,
        distinct_peers=args.distinct_peers,
        push_allow_remote=args.push_allow_remote,
        push_stale_after=args.push_stale_after,
    )


def runner(choice: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop cuts the proxy's per-request cost a lot; plain asyncio works everywhere."""
    if choice == "asyncio":
        return asyncio.run
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    try:
        config = config_from(args)
        instance = agent.Agent(config)
    except (ValueError, OSError) as error:
        log.error("invalid configuration", extra={"fields": {"error": str(error)}})
        return 2
    del instance  # built once only to validate before the loop starts
    try:
        runner(args.loop)(agent.run(config))
    except OSError as error:
        log.error("cannot start", extra={"fields": {"error": str(error)}})
        return 1
    return 0
