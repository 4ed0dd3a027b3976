"""The scale benchmark's figures from what it recorded."""

from __future__ import annotations

import json
from pathlib import Path

from webapp_scaler_dev.scale import measure
from webapp_scaler_dev.scale.measure import Request, Sample, ScrapeRound


def test_the_audit_log_yields_only_the_operators_requests_with_group_and_subresource(tmp_path: Path) -> None:
    lines = [
        {
            "user": {"username": "webapp-scaler-operator"},
            "verb": "patch",
            "requestReceivedTimestamp": "2026-12-02T10:00:00.250000Z",
            "objectRef": {
                "resource": "webappscalings",
                "subresource": "status",
                "apiGroup": "webappscaler.io",
                "namespace": "a",
                "name": "app",
            },
        },
        {
            "user": {"username": "admin"},
            "verb": "create",
            "requestReceivedTimestamp": "2026-12-02T10:00:01Z",
            "objectRef": {"resource": "pods", "namespace": "a", "name": "p"},
        },
        {
            "user": {"username": "webapp-scaler-operator"},
            "verb": "watch",
            "requestReceivedTimestamp": "2026-12-02T10:00:02Z",
            "objectRef": {"resource": "pods"},
        },
    ]
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    requests = measure.read_audit(path, "webapp-scaler-operator")
    assert [(r.verb, r.resource) for r in requests] == [
        ("patch", "webappscalings/status.webappscaler.io"),
        ("watch", "pods"),
    ]
    assert requests[1].at - requests[0].at == 1.75


def test_requests_per_second_counts_only_inside_the_window() -> None:
    requests = [Request(t, "patch", "x", "", "") for t in (0.5, 1.0, 2.0, 9.9, 10.0)]
    assert measure.requests_per_second(requests, 1.0, 10.0) == {"patch x": round(3 / 9, 3)}


def test_decision_latency_runs_from_the_last_round_of_the_owner_before_the_new_vm() -> None:
    rounds = [
        ScrapeRound("ns", "app", 0.0, 0.2, 10),
        ScrapeRound("ns", "app", 15.0, 15.3, 10),
        ScrapeRound("ns", "other", 15.0, 15.9, 10),
    ]
    creates = [(15.5, "ns", "app"), (16.0, "ns", "app"), (16.0, "ns", "stranger"), (0.1, "ns", "app")]
    latencies = measure.decision_latencies(creates, rounds)
    assert [round(v, 3) for v in latencies] == [0.2, 0.7]


def test_restart_convergence_waits_for_the_last_object_and_is_none_while_one_is_missing() -> None:
    rounds = [
        ScrapeRound("ns", "a", 90.0, 90.1, 1),  # before the restart: not counted
        ScrapeRound("ns", "a", 104.0, 104.5, 1),
        ScrapeRound("ns", "b", 110.0, 111.0, 1),
    ]
    assert measure.restart_convergence(rounds, [("ns", "a"), ("ns", "b")], 100.0) == 11.0
    assert measure.restart_convergence(rounds, [("ns", "a"), ("ns", "c")], 100.0) is None


def test_cpu_cores_are_the_average_over_the_span_and_the_busiest_interval() -> None:
    samples = [Sample(0.0, 0.0, 1), Sample(1.0, 0.5, 1), Sample(2.0, 0.6, 1), Sample(4.0, 1.0, 1)]
    average, peak = measure.cpu_cores(samples, 0.0, 4.0)
    assert average == 0.25
    assert peak == 0.5
    assert measure.cpu_cores(samples, 10.0, 20.0) == (None, None)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert measure.percentile(values, 0.5) == 50.0
    assert measure.percentile(values, 0.99) == 99.0
    assert measure.percentile([], 0.5) is None
    assert measure.summary([2.0, 1.0]) == {"count": 2, "p50": 1.0, "p99": 2.0, "max": 2.0}
