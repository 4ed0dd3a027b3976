"""Start-up settings of the operator process: command line and environment → one frozen Config."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Config:
    namespaces: tuple[str, ...]  # empty: the whole cluster
    standalone: bool
    peering: str
    liveness_endpoint: str | None
    metrics_port: int  # 0: no metrics endpoint
    metrics_address: str
    log_format: str  # "json" or "plain"
    verbose: bool
    own_addresses: frozenset[str] = frozenset()  # never sent a scrape or a drain request (addresses.py)


def configure(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[n for n in env("WEBAPP_SCALER_NAMESPACES", "").split(",") if n],
        help="watch only this namespace (repeatable; env WEBAPP_SCALER_NAMESPACES=a,b)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch the whole cluster (default)")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--standalone",
        action="store_true",
        default=env("WEBAPP_SCALER_STANDALONE", "") == "true",
        help="no peering: the only replica (tests, demo)",
    )
    peering.add_argument(
        "--peering",
        default=env("WEBAPP_SCALER_PEERING", "webapp-scaler"),
        help="kopf peering name: replicas sharing it keep one of them active (default webapp-scaler)",
    )
    parser.add_argument(
        "--liveness",
        default=env("WEBAPP_SCALER_LIVENESS", "http://0.0.0.0:8081/healthz"),
        help="liveness endpoint URL, or 'off' (default http://0.0.0.0:8081/healthz)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("WEBAPP_SCALER_METRICS_PORT", "9090")),
        help="Prometheus metrics port, 0 to disable (default 9090)",
    )
    parser.add_argument("--metrics-address", default=env("WEBAPP_SCALER_METRICS_ADDRESS", "0.0.0.0"))
    parser.add_argument("--log-format", choices=["json", "plain"], default=env("WEBAPP_SCALER_LOG_FORMAT", "json"))
    parser.add_argument("-v", "--verbose", action="store_true")


def own_addresses(environ: Mapping[str, str]) -> frozenset[str]:
    """The operator's own addresses: its Pod's (the Deployment passes status.podIPs as POD_IPS) and what
    its host name resolves to. An agent must never be able to point the operator at itself."""
    found = {ip.strip() for ip in environ.get("POD_IPS", environ.get("POD_IP", "")).split(",") if ip.strip()}
    with contextlib.suppress(OSError):
        found.update(socket.gethostbyname_ex(socket.gethostname())[2])
    return frozenset(found)


def from_args(args: argparse.Namespace) -> Config:
    return Config(
        namespaces=() if args.all_namespaces else tuple(args.namespace),
        standalone=bool(args.standalone),
        peering=str(args.peering),
        liveness_endpoint=None if args.liveness == "off" else str(args.liveness),
        metrics_port=int(args.metrics_port),
        metrics_address=str(args.metrics_address),
        log_format=str(args.log_format),
        verbose=bool(args.verbose),
        own_addresses=own_addresses(os.environ),
    )
