"""monitoring/ on its own: promtool accepts the alert rules and their unit tests pass, the dashboard is a
Grafana dashboard of the shape its users import, and every metric an alert or a panel reads is one the
operator or the session agent exports.

promtool is required, not optional: without it the alerts would go untested, so its absence fails
(`make system-packages` installs it, as CI does). The end-to-end check of the same queries against a
live Prometheus is tests/e2e/test_demo_stack.py.
"""

from __future__ import annotations

import shutil
import subprocess
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client import REGISTRY

from session_agent.drain import DRAIN_MODES
from session_agent.metrics import SessionCollector, build_registry
from session_agent.sources.base import SessionStats
from webapp_scaler import telemetry
from webapp_scaler_dev import monitoring


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is not installed: make system-packages (Debian package prometheus)"
    return subprocess.run(
        [binary, *args], cwd=monitoring.MONITORING, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_alert_rules() -> None:
    checked = promtool("check", "rules", monitoring.ALERTS.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(monitoring.alert_rules())} rules found" in checked.stdout


def test_the_alerts_unit_tests_pass() -> None:
    tested = promtool("test", "rules", monitoring.ALERTS_TEST.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    """promtool passes a test file that forgets an alert; this does not."""
    cases = [
        case for test in yaml.safe_load(monitoring.ALERTS_TEST.read_text())["tests"] for case in test["alert_rule_test"]
    ]
    for rule in monitoring.alert_rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} is never tested firing"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} is never tested quiet"


@pytest.mark.parametrize("rule", monitoring.alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_for_a_severity_and_templated_annotations(rule: dict) -> None:
    assert rule.get("for"), "an alert without `for:` pages on one bad evaluation"
    assert rule["labels"]["severity"] in ("warning", "critical")
    for annotation in ("summary", "description"):
        text = rule["annotations"][annotation]
        assert "{{ $labels.namespace }}/{{ $labels.name }}" in text, annotation


def exported_names() -> set[str]:
    """The sample names the operator's registry and a session agent's collector expose."""
    names = {sample.name for metric in REGISTRY.collect() for sample in metric.samples}
    telemetry.start("monitoring-test", "names")  # the labelled series only exist once a round set them
    for metric in REGISTRY.collect():
        if metric.name.startswith("webapp_scaler_"):
            names.add(metric.name)
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(metric.type, ())
            names |= {metric.name + suffix for suffix in suffixes}
    telemetry.forget("monitoring-test", "names")
    stats = SessionStats(active=1, started=1, expired=1, logged_out=1, evicted=1, requests=1, rejected={"x": 1})
    source = SimpleNamespace(name="proxy", drain_modes=DRAIN_MODES, stats=lambda: stats)
    agent = build_registry(SessionCollector(source, SimpleNamespace(draining=False, mode=None)))  # type: ignore[arg-type]
    names |= {sample.name for metric in agent.collect() for sample in metric.samples}
    return names


def test_every_metric_of_the_alerts_and_the_dashboard_is_exported() -> None:
    exported = exported_names()
    queries = [*monitoring.alert_queries(), *monitoring.panel_queries()]
    unknown = {q.where: sorted(monitoring.metric_names(q.expr) - exported) for q in queries}
    assert {where: names for where, names in unknown.items() if names} == {}
    assert all(monitoring.metric_names(q.expr) for q in queries), "a query that reads no metric"


def test_the_dashboard_has_the_datasource_namespace_and_name_variables() -> None:
    board = monitoring.dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "name"} <= variables.keys()
    for panel in monitoring.panels(board):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert "$namespace" in target["expr"], (panel["title"], target["expr"])
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    """Sessions, moving average, forecast, the VMs (desired, ready, draining, warm), scrape errors and the
    decisions' reasons: each has a panel query."""
    text = " ".join(q.expr for q in monitoring.panel_queries())
    for wanted in (
        "webapp_scaler_sessions{",
        "webapp_scaler_sessions_average",
        "webapp_scaler_sessions_forecast",
        "webapp_scaler_desired_replicas",
        "webapp_scaler_ready_replicas",
        'phase="Draining"',
        'phase="Warm"',
        "webapp_scaler_scrape_errors_total",
        "webapp_scaler_decision_reasons_total",
    ):
        assert wanted in text, wanted


def test_metric_names_reads_selectors_not_functions_labels_or_keywords() -> None:
    expr = (
        'sum by (reason) (rate(webapp_scaler_decisions_total{namespace="$namespace", name="x"}[5m])) '
        "> on (namespace) group_left webapp_scaler_max_replicas * 2 and up offset 1m"
    )
    assert monitoring.metric_names(expr) == {"webapp_scaler_decisions_total", "webapp_scaler_max_replicas", "up"}
    assert monitoring.substitute(
        'a{namespace="$namespace",name="${name}"}[$__rate_interval]', namespace="n", name="w"
    ) == ('a{namespace="n",name="w"}[1m]')
