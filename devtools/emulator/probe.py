"""Readiness probes against a guest, as the kubelet runs them on virt-launcher pods."""

from __future__ import annotations

import contextlib
import http.client
import socket
from dataclasses import dataclass
from typing import Any

from emulator.config import EmulatorConfig

TIMEOUT = 1.0  # the kubelet's default timeoutSeconds


@dataclass(frozen=True)
class Probe:
    kind: str  # "http" or "tcp"
    port: int
    path: str = "/"
    period: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    timeout: float = TIMEOUT


def from_vmi(spec: dict[str, Any], config: EmulatorConfig) -> Probe:
    """The VMI's readinessProbe (httpGet or tcpSocket); without one, the session agent's /readyz."""
    probe = spec.get("readinessProbe") or {}
    period = float(probe.get("periodSeconds") or config.probe_period)
    failures = int(probe.get("failureThreshold") or 3)
    successes = int(probe.get("successThreshold") or 1)
    timeout = float(probe.get("timeoutSeconds") or TIMEOUT)
    if "httpGet" in probe:
        get = probe["httpGet"]
        port = int(get.get("port") or config.readiness_port)
        return Probe("http", port, str(get.get("path") or "/"), period, failures, successes, timeout)
    if "tcpSocket" in probe:
        return Probe("tcp", int(probe["tcpSocket"]["port"]), "", period, failures, successes, timeout)
    return Probe("http", config.readiness_port, config.readiness_path, config.probe_period, failures, successes)


def check(probe: Probe, ip: str) -> bool:
    """One probe: an HTTP status 200-399, or an accepted TCP connection, within the probe's timeout
    (timeoutSeconds, 1 s when unset, as the kubelet does)."""
    if probe.kind == "tcp":
        with contextlib.suppress(OSError), socket.create_connection((ip, probe.port), timeout=probe.timeout):
            return True
        return False
    connection = http.client.HTTPConnection(ip, probe.port, timeout=probe.timeout)
    try:
        connection.request("GET", probe.path, headers={"User-Agent": "kube-probe/emulator"})
        return 200 <= connection.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
