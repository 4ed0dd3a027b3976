"""The whole product on one machine, as `make demo` runs it, in a short form: real control plane, emulated
KubeVirt/CDI with the web shop and the session agent in every VM (each in its own network namespace),
the operator process, HAProxy following the Service's EndpointSlices, and shoppers going through it.

It must scale out, drain the VM with the fewest sessions while that VM keeps serving its logged-in users
through the load balancer, remove it, and lose no session on the way."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from webapp_scaler_dev import monitoring
from webapp_scaler_dev.demo.load import LoadProfile
from webapp_scaler_dev.demo.prometheus import Prometheus
from webapp_scaler_dev.demo.session import DemoResult, drive
from webapp_scaler_dev.demo.stack import NAME, QUICK_STACK, DemoStack, quiet_step

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: every VM is a network namespace (CI runs as root)"),
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (make system-packages)"),
]

QUICK = dataclasses.replace(QUICK_STACK, namespace="demo-e2e")
# Visits of 8-14 actions (4-17 s): a scale-in comes 15-20 s into the fall (10 s average, 5 s
# stabilization), and the VM it drains must still hold users who are active, not only sessions left to
# expire, even when a loaded host delays the rounds by seconds.
PROFILE = LoadProfile(
    duration_s=60,
    base_users=5,
    peak_users=25,
    ramp_up=0.3,
    hold_peak=0.2,
    ramp_down=0.3,
    actions=(8, 14),
    think_s=(0.4, 1.2),
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """Up for the whole module: the Prometheus tests query the demo's Prometheus after the run."""
    workdir: Path = tmp_path_factory.mktemp("demo")
    with DemoStack(QUICK, quiet_step, workdir=workdir, keep_workdir=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def result(stack: DemoStack) -> DemoResult:
    return asyncio.run(drive(stack, PROFILE, settle_s=60))


def test_scales_out_to_several_ready_vms(result: DemoResult) -> None:
    assert result.history.peak_ready >= 2, result.history.event_log
    assert result.history.event_counts["ScaledUp"] >= 1


def test_scales_in_by_draining_then_deleting_a_vm(result: DemoResult) -> None:
    drained = result.history.drained_and_deleted
    assert drained, f"no VM was drained and deleted: {result.history.event_log}"
    assert result.history.event_counts["Draining"] >= 1
    assert result.history.event_counts["DeletedDrainedVM"] >= 1
    assert result.history.event_counts["DrainTimeout"] == 0


def test_drained_vm_kept_serving_its_logged_in_users_through_the_load_balancer(result: DemoResult) -> None:
    drained = result.history.drained_and_deleted
    served = {vm: result.stats.served_while_draining[vm] for vm in drained}
    users = {vm: result.stats.drained_users(vm) for vm in drained}
    assert any(count > 0 for count in served.values()), (served, dict(result.stats.served_by))
    assert any(count > 0 for count in users.values()), users


def test_no_session_lost(result: DemoResult) -> None:
    stats = result.stats
    assert stats.users_started > 0 and stats.checkouts > 0
    assert stats.sessions_lost == 0, stats.losses
    assert stats.users_turned_away == 0


def test_no_log_of_the_run_shows_a_session_id(result: DemoResult, stack: DemoStack) -> None:
    """The operator's, the emulator's, every guest's (the agent and the shop) and the load balancer's logs
    of the whole run: none holds a session id a user was given (a session id is a password)."""
    ids = {i.encode() for i in result.stats.session_ids}
    assert len(ids) >= result.stats.checkouts > 0
    assert stack.workdir is not None
    logs = [
        path
        for path in stack.workdir.rglob("*")
        if path.is_file() and (path.suffix in (".log", ".cfg", ".conf", ".txt") or "log" in path.name)
    ]
    assert any(path.name == "operator.log" for path in logs) and len(logs) > 3, logs
    leaked = []
    for path in logs:
        data = path.read_bytes()
        leaked.extend(f"{path}: {i.decode()[:6]}…" for i in ids if i in data)
    assert not leaked, leaked


def test_the_run_ends_with_a_picture_in_the_workdir(result: DemoResult, stack: DemoStack) -> None:
    picture = result.picture
    assert picture is not None and picture.parent == stack.workdir
    data = picture.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:8]
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 600 and height >= 400, (width, height)
    assert 20_000 < len(data) < 2_000_000, len(data)  # two drawn panels; neither blank nor a raw bitmap
    assert len(result.history.timeline) >= PROFILE.duration_s / 2  # a point a poll: the picture covers the run


def live_prometheus(stack: DemoStack, result: DemoResult) -> Prometheus:
    """The demo's own Prometheus, still up (the stack outlives the run), after the run scraped it all."""
    assert result.duration_s > 0
    prometheus = stack.prometheus
    assert prometheus is not None, f"the demo ran without Prometheus: {stack.notes} (make system-packages)"
    return prometheus


def test_prometheus_scrapes_the_operator_and_every_agent(stack: DemoStack, result: DemoResult) -> None:
    prometheus = live_prometheus(stack, result)
    targets = prometheus.api("targets", state="active")["activeTargets"]
    jobs = {t["labels"]["job"] for t in targets}
    assert jobs == {"webapp-scaler-operator", "session-agent"}, targets

    def down() -> list[tuple[str, str]]:
        active = prometheus.api("targets", state="active")["activeTargets"]
        return [(t["scrapeUrl"], t["lastError"]) for t in active if t["health"] != "up"]

    # a VM starting or stopping at this moment is a target whose agent does not listen (yet, or any more)
    # until the targets file follows its VMI and Prometheus re-reads it (5 s) and scrapes again: every
    # target must be up within that, one that stays down fails
    deadline = time.monotonic() + 30
    while (failing := down()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not failing, failing
    seen_vms = {s["metric"]["vm"] for s in prometheus.query("count by (vm) (present_over_time(webapp_draining[10m]))")}
    assert len(seen_vms) >= result.history.peak_ready, (seen_vms, result.history.peak_ready)
    assert set(result.history.drained_and_deleted) <= seen_vms, "a drained VM's agent was never scraped"


def test_every_dashboard_panel_query_returns_data(stack: DemoStack, result: DemoResult) -> None:
    """Each query as Grafana sends it for the demo's WebAppScaling: a panel that refers to a metric we do
    not export, or with a label the exporter does not set, comes back empty."""
    prometheus = live_prometheus(stack, result)
    empty = []
    for query in monitoring.panel_queries():
        expr = monitoring.substitute(query.expr, namespace=QUICK.namespace, name=NAME)
        if not prometheus.query(expr):
            empty.append((query.where, expr))
    assert empty == []
    for variable, label in (("namespace", "namespace"), ("name", "name")):
        values = prometheus.api(f"label/{label}/values", **{"match[]": "webapp_scaler_desired_replicas"})
        assert {"namespace": QUICK.namespace, "name": NAME}[variable] in values, values


def test_every_alert_expression_evaluates_and_reads_only_exported_metrics(stack: DemoStack, result: DemoResult) -> None:
    """An alert of a healthy run is false, and a false PromQL condition is an empty vector, so a typo in a
    metric name would look just like "not firing". Each expression is therefore run (Prometheus accepts it)
    and each metric it selects is looked up over the run with present_over_time for the demo's
    WebAppScaling: every one must have samples. Prometheus has loaded monitoring/alerts.yaml as rule files,
    and evaluates them without error."""
    prometheus = live_prometheus(stack, result)
    missing = []
    for query in monitoring.alert_queries():
        prometheus.query(query.expr)  # raises with Prometheus's error for an expression it refuses
        for metric in sorted(monitoring.metric_names(query.expr)):
            selector = f'{metric}{{namespace="{QUICK.namespace}", name="{NAME}"}}'
            if not prometheus.query(f"present_over_time({selector}[10m])"):
                missing.append((query.where, metric))
    assert missing == []
    groups = prometheus.api("rules", type="alert")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert loaded.keys() == {rule["alert"] for rule in monitoring.alert_rules()}
    unhealthy = {name: rule.get("lastError") for name, rule in loaded.items() if rule["health"] != "ok"}
    assert unhealthy == {}
    firing = {name for name, rule in loaded.items() if rule["state"] == "firing"}
    assert "WebAppScalerGoldenImageNotReady" not in firing and "WebAppScalerDrainTimedOut" not in firing


def test_the_pinned_at_max_alert_went_pending_at_the_peak(stack: DemoStack, result: DemoResult) -> None:
    """The profile's peak needs more VMs than spec.replicas.max allows, so for a while the fleet is pinned
    at max while over target: the one alert a healthy run makes true. Its ALERTS series proves the rule
    matched the live series (its `for:` is longer than the run, so it is pending, not firing)."""
    assert PROFILE.peak_users > QUICK.max_vms * QUICK.target_per_vm
    prometheus = live_prometheus(stack, result)
    window = f"{int(result.duration_s) + 60}s"
    pending = f'present_over_time(ALERTS{{alertname="WebAppScalerAtMaxReplicas", alertstate="pending"}}[{window}])'
    [series] = prometheus.query(pending)
    assert (series["metric"]["namespace"], series["metric"]["name"]) == (QUICK.namespace, NAME)
