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
    standalone: bool  # no coordination at all (tests, demo): acts at once, never waits for the Lease
    leader_elect: bool  # act only while holding the Lease (webapp_scaler.leader); False when standalone
    lease_name: str
    lease_namespace: str
    lease_identity: str
    lease_duration: float
    renew_deadline: float
    retry_period: float
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
    coordination = parser.add_mutually_exclusive_group()
    coordination.add_argument(
        "--standalone",
        action="store_true",
        default=env("WEBAPP_SCALER_STANDALONE", "") == "true",
        help="no coordination at all: act at once, the only replica (tests, demo); it still claims the Lease "
        "so that a second standalone operator is reported",
    )
    coordination.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=env("WEBAPP_SCALER_LEADER_ELECT", "true") != "false",
        help="act only while holding the leader election Lease, so one of several replicas acts "
        "(default; --no-leader-elect is --standalone)",
    )
    parser.add_argument(
        "--lease-name",
        default=env("WEBAPP_SCALER_LEASE_NAME", "webapp-scaler"),
        help="the coordination.k8s.io Lease of the election (default webapp-scaler)",
    )
    parser.add_argument(
        "--lease-namespace",
        default=env("WEBAPP_SCALER_LEASE_NAMESPACE", ""),
        help="its namespace (default: the pod's, from POD_NAMESPACE or the service account, else webapp-scaler)",
    )
    parser.add_argument(
        "--lease-identity",
        default=env("WEBAPP_SCALER_LEASE_IDENTITY", ""),
        help="this replica's holder identity (default: host name and a random suffix)",
    )
    parser.add_argument(
        "--lease-duration",
        type=float,
        default=float(env("WEBAPP_SCALER_LEASE_DURATION", "15")),
        help="seconds a standby waits, since it last saw the Lease change, before taking it (default 15)",
    )
    parser.add_argument(
        "--renew-deadline",
        type=float,
        default=float(env("WEBAPP_SCALER_RENEW_DEADLINE", "10")),
        help="seconds the leader may fail to renew before it stops acting and exits (default 10)",
    )
    parser.add_argument(
        "--retry-period",
        type=float,
        default=float(env("WEBAPP_SCALER_RETRY_PERIOD", "2")),
        help="seconds between attempts to acquire or renew (default 2)",
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
        standalone=bool(args.standalone or not args.leader_elect),
        leader_elect=bool(args.leader_elect and not args.standalone),
        lease_name=str(args.lease_name),
        lease_namespace=str(args.lease_namespace),
        lease_identity=str(args.lease_identity),
        lease_duration=float(args.lease_duration),
        renew_deadline=float(args.renew_deadline),
        retry_period=float(args.retry_period),
        liveness_endpoint=None if args.liveness == "off" else str(args.liveness),
        metrics_port=int(args.metrics_port),
        metrics_address=str(args.metrics_address),
        log_format=str(args.log_format),
        verbose=bool(args.verbose),
        own_addresses=own_addresses(os.environ),
    )
