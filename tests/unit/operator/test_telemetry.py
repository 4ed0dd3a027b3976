"""The operator's Prometheus metrics after whole reconcile rounds against the fakes: the series that
monitoring/alerts.yaml and monitoring/dashboard.json read, counted where the operator acts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from tests.unit.operator.fakes import DRAINING, NAME, NAMESPACE, FakeKube, World, ready_fleet, scaling
from webapp_scaler import telemetry
from webapp_scaler.reconcile import Reconciler


def sample(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"namespace": NAMESPACE, "name": NAME, **labels})


@pytest.fixture(autouse=True)
def fresh_series() -> Iterator[None]:
    """The registry is process-wide: each test starts without this WebAppScaling's series."""
    telemetry.forget(NAMESPACE, NAME)
    yield
    telemetry.forget(NAMESPACE, NAME)


class RefusingKube(FakeKube):
    """The apiserver refuses every VM (a ResourceQuota, say)."""

    async def create_vm(self, body: Any) -> dict[str, Any]:
        self.calls.append(("create_vm", body["metadata"]["name"]))
        raise ApiException(status=403, reason="Forbidden")


async def test_a_round_exports_phases_spec_limits_conditions_and_counters_at_zero() -> None:
    world = World()
    world.source.sessions = {"a": 30, "b": 5}
    spec = scaling(replicas={"min": 1, "max": 7}, scaleIn={"drain": {"timeoutSeconds": 600}})
    await Reconciler(NAMESPACE, NAME).round(
        world.runtime, spec, ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING)), world.event
    )
    assert sample("webapp_scaler_replicas", phase="Ready") == 1
    assert sample("webapp_scaler_replicas", phase="Draining") == 1
    assert sample("webapp_scaler_replicas", phase="Warm") == 0
    assert sample("webapp_scaler_max_replicas") == 7
    assert sample("webapp_scaler_target_sessions_per_vm") == 40
    assert sample("webapp_scaler_drain_timeout_seconds") == 600
    assert sample("webapp_scaler_oldest_drain_seconds") == 60  # draining since 07:59, the round at 08:00
    assert sample("webapp_scaler_condition", type="MetricsAvailable") == 1
    assert sample("webapp_scaler_condition", type="GoldenImageReady") == 1
    for counter in ("scrape_errors", "drain_timeouts", "vm_create_failures"):
        assert sample(f"webapp_scaler_{counter}_total") == 0, counter
    reasons = {
        s.labels["reason"]: s.value
        for metric in REGISTRY.collect()
        if metric.name == "webapp_scaler_decision_reasons"
        for s in metric.samples
        if s.name.endswith("_total") and s.labels["name"] == NAME
    }
    assert sum(reasons.values()) == 1, reasons  # one round, one decision


async def test_a_draining_vm_deleted_at_its_timeout_with_sessions_counts_as_a_drain_timeout() -> None:
    """b drains for 60 s against a 30 s timeout while holding 3 sessions: deleted, and counted; c also
    drains past the timeout but its agent counts zero sessions: an ordinary drained VM, not counted."""
    world = World()
    world.source.sessions = {"a": 10, "b": 3, "c": 0}
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING), ("c", "10.0.0.3", DRAINING))
    spec = scaling(scaleIn={"drain": {"timeoutSeconds": 30}})
    await Reconciler(NAMESPACE, NAME).round(world.runtime, spec, view, world.event)
    assert sorted(world.kube.called("delete_vm")) == ["b", "c"]
    assert sample("webapp_scaler_drain_timeouts_total") == 1


async def test_a_drain_that_ends_at_zero_sessions_before_its_timeout_is_not_a_timeout() -> None:
    world = World()
    world.source.sessions = {"a": 10, "b": 0}
    spec = scaling(scaleIn={"drain": {"timeoutSeconds": 3600}})
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    await Reconciler(NAMESPACE, NAME).round(world.runtime, spec, view, world.event)
    assert world.kube.called("delete_vm") == ["b"]
    assert sample("webapp_scaler_drain_timeouts_total") == 0


async def test_a_refused_vm_creation_is_counted() -> None:
    world = World(kube=RefusingKube())
    world.kube.golden[("DataVolume", NAMESPACE, "golden")] = {"status": {"phase": "Succeeded"}}
    world.source.sessions = {"a": 150}
    reconciler = Reconciler(NAMESPACE, NAME)
    view = ready_fleet(("a", "10.0.0.1", None))
    for _ in range(2):
        await reconciler.round(world.runtime, scaling(), view, world.event)
        world.now += 15
    assert sample("webapp_scaler_vm_create_failures_total") == 2
    assert "FailedCreate" in world.reasons()


async def test_a_golden_image_that_is_not_ready_is_condition_zero() -> None:
    world = World()
    world.kube.golden[("DataVolume", NAMESPACE, "golden")] = {"status": {"phase": "ImportInProgress"}}
    world.source.sessions = {"a": 10}
    await Reconciler(NAMESPACE, NAME).round(world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None)), world.event)
    assert sample("webapp_scaler_condition", type="GoldenImageReady") == 0


async def test_forget_drops_every_series_of_the_webappscaling() -> None:
    world = World()
    world.source.sessions = {"a": 150}
    await Reconciler(NAMESPACE, NAME).round(world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None)), world.event)
    assert sample("webapp_scaler_replicas", phase="Ready") == 1
    telemetry.forget(NAMESPACE, NAME)
    left = [
        (s.name, s.labels)
        for metric in REGISTRY.collect()
        if metric.name.startswith("webapp_scaler_")
        for s in metric.samples
        if s.labels.get("namespace") == NAMESPACE and s.labels.get("name") == NAME
    ]
    assert left == []


async def test_failed_round_steps_are_counted_by_step_and_exported_at_zero() -> None:
    """webapp_scaler_round_failures_total: one count per failing step per round, the others stay 0."""
    world = World()
    error = ApiException(status=422, reason="Unprocessable Entity")
    world.kube.refuse_apply["Ingress"] = error
    world.source.sessions = {"a": 10}
    reconciler = Reconciler(NAMESPACE, NAME)
    spec = scaling(ingress={"enabled": True, "host": "shop.example.com"})
    for _ in range(3):
        await reconciler.round(world.runtime, spec, ready_fleet(("a", "10.0.0.1", None)), world.event)
        world.now += 15
    assert sample("webapp_scaler_round_failures_total", step="ingress") == 3
    assert sample("webapp_scaler_round_failures_total", step="service") == 0
    assert sample("webapp_scaler_round_failures_total", step="actions") == 0
    telemetry.forget(NAMESPACE, NAME)
    assert sample("webapp_scaler_round_failures_total", step="ingress") is None
