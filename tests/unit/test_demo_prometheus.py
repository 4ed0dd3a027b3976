"""The demo's Prometheus without the demo: the real binary on loopback scraping two small exporters of
ours, one as the operator and one as a VM's agent, while the agents' targets file is rewritten as VMs
come and go; and the demo's picture drawn from a short history.

Prometheus is required, like promtool in test_monitoring.py: `make system-packages` installs it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from prometheus_client import CollectorRegistry, Gauge, make_wsgi_app

from webapp_scaler_dev.demo.monitor import History, Snapshot, VMRow
from webapp_scaler_dev.demo.picture import plot_history
from webapp_scaler_dev.demo.prometheus import AgentTarget, Prometheus
from webapp_scaler_dev.monitoring import alert_rules


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[Callable[[str, float], int]]:
    """exporter(metric, value) → the port of a /metrics on 127.0.0.1 with that one gauge."""
    servers: list[WSGIServer] = []

    def start(metric: str, value: float) -> int:
        registry = CollectorRegistry()
        Gauge(metric, "test", ("namespace", "name"), registry=registry).labels("ns", "shop").set(value)
        server = make_server("127.0.0.1", 0, make_wsgi_app(registry), handler_class=QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_port)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.25)


def test_prometheus_follows_the_agents_file_and_loads_the_alerts(
    tmp_path: Path, exporter: Callable[[str, float], int]
) -> None:
    assert shutil.which("prometheus"), "prometheus is not installed: make system-packages"
    operator = exporter("webapp_scaler_desired_replicas", 3)
    agent = exporter("webapp_active_sessions", 7)
    prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{operator}", "ns", "shop", scrape_s=1)
    prometheus.start()
    try:
        desired = 'webapp_scaler_desired_replicas{job="webapp-scaler-operator"}'
        wait_for("the operator scraped", lambda: bool(prometheus.query(desired)))
        [sample] = prometheus.query(desired)
        assert sample["metric"]["namespace"] == "ns" and sample["metric"]["name"] == "shop"  # honor_labels
        assert sample["value"][1] == "3"

        prometheus.set_agents([AgentTarget("shop-a1b2c", "127.0.0.1", agent)])
        sessions = 'webapp_active_sessions{job="session-agent", vm="shop-a1b2c", webappscaling="shop"}'
        wait_for("the new VM's agent scraped", lambda: bool(prometheus.query(sessions)))
        assert prometheus.query(sessions)[0]["value"][1] == "7"

        prometheus.set_agents([])  # the VM is gone

        def agent_dropped() -> bool:
            active = prometheus.api("targets", state="active")["activeTargets"]
            return {t["labels"]["job"] for t in active} == {"webapp-scaler-operator"}

        wait_for("the deleted VM's agent dropped", agent_dropped)
        groups = prometheus.api("rules", type="alert")["groups"]
        assert {r["name"] for g in groups for r in g["rules"]} == {r["alert"] for r in alert_rules()}
    finally:
        prometheus.stop()
    assert prometheus.process is not None and prometheus.process.returncode is not None


def test_the_picture_is_a_png_of_the_history(tmp_path: Path) -> None:
    history = History()
    for second, (phases, sessions) in enumerate(
        [(("Ready", "Cloning"), 10), (("Ready", "Ready"), 30), (("Ready", "Draining"), 12), (("Ready",), 8)]
    ):
        vms = tuple(VMRow(f"vm{i}", phase, None, phase == "Draining") for i, phase in enumerate(phases))
        ready = sum(1 for phase in phases if phase == "Ready")
        history.record(Snapshot(at=100.0 + 10 * second, vms=vms, desired=len(phases), ready=ready, sessions=sessions))
    assert [dict(p.phases) for p in history.timeline][2] == {"Ready": 1, "Draining": 1}
    path = plot_history(history, tmp_path / "demo.png", target_per_vm=20, title="test")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no snapshot"):
        plot_history(History(), tmp_path / "empty.png", target_per_vm=20, title="test")
