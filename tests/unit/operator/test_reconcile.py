"""Whole reconcile rounds against fakes of our own API wrapper and agent clients: what a round asks the
cluster and the agents to do, given what the watch indexes show."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from tests.unit.operator import fakes
from tests.unit.operator.fakes import DRAINING, NAMESPACE, World, ready_fleet, scaling
from webapp_scaler import fleet, webappscaling
from webapp_scaler.reconcile import Reconciler


def condition(status: dict, kind: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == kind)


async def test_a_returned_vm_is_not_drained_again_while_the_watch_still_shows_its_old_annotation() -> None:
    """Round N returns the draining VM b to service (load came back). In round N+1 the watch index still
    carries b's `draining-since` (the patch has not come back yet): b is Ready for the round, and its
    agent must not be told to drain again, or it would refuse new users for good."""
    world = World()
    world.source.sessions = {"a": 50, "b": 30}
    reconciler = Reconciler(NAMESPACE, "shop")
    stale = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    was = scaling()

    await reconciler.round(world.runtime, was, stale, world.event)
    assert world.drainer.calls == [("DELETE", "http://10.0.0.2:9100/drain", None)]  # b has no token Secret
    assert ("b", {"metadata": {"annotations": {"webappscaler.io/draining-since": None}}}) in world.kube.called(
        "patch_vm"
    )

    world.now += 15
    await reconciler.round(world.runtime, was, stale, world.event)  # the same stale view
    assert world.drainer.calls == [("DELETE", "http://10.0.0.2:9100/drain", None)], "b was told to drain again"
    rows = {row["name"]: row for row in world.kube.statuses[-1]["vms"]}
    assert rows["b"]["phase"] == "Ready"
    assert world.kube.statuses[-1]["readyReplicas"] == 2


async def test_a_restarted_operator_returning_a_draining_vm_does_not_drain_it_in_the_same_round() -> None:
    """After a restart nothing is confirmed in memory; the first round returns b to service and must not
    then POST /drain to it as an unconfirmed draining VM."""
    world = World()
    world.source.sessions = {"a": 50, "b": 30}
    fresh = Reconciler(NAMESPACE, "shop")
    await fresh.round(
        world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING)), world.event
    )
    assert [method for method, _, _ in world.drainer.calls] == ["DELETE"]


async def test_every_vm_gets_its_own_drain_token_and_only_its_own_is_sent_to_it() -> None:
    """No user-named Secret: the operator makes a Secret per VM (owned by the VM) and sends each agent
    its own token, so one VM's token cannot drain another."""
    world = World()
    world.source.sessions = {"a": 150}
    reconciler = Reconciler(NAMESPACE, "shop")
    await reconciler.round(world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None)), world.event)
    created = world.kube.called("create_vm")
    assert world.kube.called("create_secret") == [f"{vm}-drain-token" for vm in created]
    tokens = [secret["stringData"]["token"] for secret in world.kube.created_secrets]
    assert len(set(tokens)) == len(tokens) == 3 and all(len(t) >= 40 for t in tokens)
    for secret, vm in zip(world.kube.created_secrets, created, strict=True):
        [owner] = secret["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "VirtualMachine",
            vm,
            f"vm-uid-{vm}",
            True,
        )
    # a restarted operator (no memory) drains two of them: each POST carries that VM's token
    world.kube.secrets[(NAMESPACE, "a-drain-token", "token")] = "token-of-a"
    first, second = created[0], created[1]
    view = ready_fleet(("a", "10.0.0.1", None), (first, "10.0.0.2", DRAINING), (second, "10.0.0.3", DRAINING))
    world.source.sessions = {"a": 10, first: 1, second: 2}
    await Reconciler(NAMESPACE, "shop").round(world.runtime, scaling(), view, world.event)
    sent = {url: token for _, url, token in world.drainer.calls}
    assert sent == {"http://10.0.0.2:9100/drain": tokens[0], "http://10.0.0.3:9100/drain": tokens[1]}


async def test_a_refused_token_secret_is_a_warning_and_creates_no_second_vm() -> None:
    world = World()
    world.kube.refuse_secrets = True
    world.source.sessions = {"a": 70}
    reconciler = Reconciler(NAMESPACE, "shop")
    for _ in range(3):  # the watch never shows the new VM: only the expectation holds it
        await reconciler.round(world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None)), world.event)
        world.now += 15
    assert len(world.kube.called("create_vm")) == 1
    assert any("creating the drain token of VM" in m for t, r, m in world.events if r == "FailedCreate")


async def test_a_draining_vm_is_confirmed_once_with_the_token_then_deleted_when_empty() -> None:
    world = World()
    world.kube.secrets[(NAMESPACE, "drain", "token")] = "s3cret"
    spec = scaling(sessions={"targetPerVM": 40, "agent": {"drainTokenSecretRef": {"name": "drain"}}})
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    world.source.sessions = {"a": 10, "b": 3}

    await reconciler.round(world.runtime, spec, view, world.event)
    assert world.drainer.calls == [("POST", "http://10.0.0.2:9100/drain", "s3cret")]
    world.now += 15
    await reconciler.round(world.runtime, spec, view, world.event)
    assert len(world.drainer.calls) == 1, "a confirmed drain is not repeated"
    assert world.kube.called("read_secret_key") == [("drain", "token")], "the Secret is read only to talk"

    world.source.sessions = {"a": 10, "b": 0}
    world.now += 15
    await reconciler.round(world.runtime, spec, view, world.event)
    assert world.kube.called("delete_vm") == ["b"]
    assert "DeletedDrainedVM" in world.reasons()


async def test_scale_in_annotates_before_telling_the_agent_and_names_the_mode_and_sessions_held() -> None:
    world = World()
    world.source.sessions = {"a": 5, "b": 2, "c": 9}
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", None), ("c", "10.0.0.3", None))
    spec = scaling(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    await reconciler.round(world.runtime, spec, view, world.event)
    drained = [name for name, patch in world.kube.called("patch_vm") if "draining-since" in str(patch)]
    assert drained == ["b", "a"]  # fewest sessions first; 16 sessions need one VM, c holds the most and stays
    assert {url for _, url, _ in world.drainer.calls} == {"http://10.0.0.1:9100/drain", "http://10.0.0.2:9100/drain"}
    messages = [m for _, r, m in world.events if r == "Draining"]
    assert any("draining VM b (RefuseNewSessions), 2 sessions held" in m for m in messages)
    assert world.drainer.posted_modes == ["RefuseNewSessions", "RefuseNewSessions"]
    world.now += 15
    await reconciler.round(world.runtime, spec, view, world.event)  # the watch has not shown the annotation
    assert world.kube.statuses[-1]["drainingReplicas"] == 2
    assert len(world.drainer.calls) == 2, "confirmed drains are not repeated"


async def test_scale_up_creates_once_although_the_watch_has_not_shown_the_new_vms() -> None:
    world = World()
    world.source.sessions = {"a": 150}
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None))
    await reconciler.round(world.runtime, scaling(), view, world.event)
    created = world.kube.called("create_vm")
    assert len(created) == 3  # 150 sessions / 40 per VM → 4 VMs
    world.now += 15
    await reconciler.round(world.runtime, scaling(), view, world.event)  # the index still shows only "a"
    assert world.kube.called("create_vm") == created
    assert world.kube.statuses[-1]["replicas"] == 4
    assert {row["phase"] for row in world.kube.statuses[-1]["vms"] if row["name"] in created} == {"Cloning"}


async def test_filling_the_warm_pool_while_the_watch_lags_removes_nothing() -> None:
    """Warm VMs just created are stopped VMs, not capacity: counted as cloning they would make the fleet
    look too large, and the next rounds would delete VMs to make up for it."""
    world = World()
    world.source.sessions = {"a": 30, "b": 30}
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", None))
    spec = scaling(warmPool={"size": 2}, replicas={"min": 2, "max": 2})
    for _ in range(4):
        await reconciler.round(world.runtime, spec, view, world.event)
        world.now += 1
    assert len(world.kube.called("create_vm")) == 2
    assert world.kube.called("delete_vm") == [] and world.kube.called("patch_vm") == []
    assert world.kube.statuses[-1]["warmReplicas"] == 2 and world.kube.statuses[-1]["replicas"] == 2


async def test_no_vm_is_created_from_a_golden_image_that_is_not_ready() -> None:
    world = World()
    world.kube.golden[("DataVolume", NAMESPACE, "golden")] = {"status": {"phase": "CloneInProgress"}}
    world.source.sessions = {"a": 150}
    await Reconciler(NAMESPACE, "shop").round(
        world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None)), world.event
    )
    assert world.kube.called("create_vm") == []
    assert ("Warning", "GoldenImageNotReady") in [(t, r) for t, r, _ in world.events]
    # still importing: not ready *yet* — Unknown, so Argo CD reads Progressing, not Degraded
    assert condition(world.kube.statuses[-1], "GoldenImageReady")["status"] == "Unknown"
    assert condition(world.kube.statuses[-1], "Reconciling")["status"] == "True"


async def test_an_invalid_spec_is_reported_and_nothing_is_done() -> None:
    world = World()
    invalid = scaling(replicas={"min": 5, "max": 2})
    assert isinstance(invalid, webappscaling.InvalidWebAppScaling)
    await Reconciler(NAMESPACE, "shop").round(world.runtime, invalid, ready_fleet(("a", "10.0.0.1", None)), world.event)
    assert world.kube.calls == [] and world.drainer.calls == [] and world.source.asked == []
    status = world.kube.statuses[-1]
    for kind in ("Ready", "Scaling", "GoldenImageReady"):
        assert condition(status, kind)["reason"] == "InvalidSpec"
    assert "spec.replicas.max" in condition(status, "Ready")["message"]
    assert [row["name"] for row in status["vms"]] == ["a"]


async def test_status_is_written_only_when_it_changes() -> None:
    world = World()
    world.source.sessions = {"a": 20}
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None))
    for _ in range(3):
        await reconciler.round(world.runtime, scaling(), view, world.event)
        world.now += 15
    assert len(world.kube.statuses) == 1
    world.source.sessions = {"a": 21}
    await reconciler.round(world.runtime, scaling(), view, world.event)
    assert len(world.kube.statuses) == 2
    assert world.kube.statuses[-1]["sessions"]["current"] == 21


async def test_the_service_is_applied_once_per_generation_and_our_disabled_ingress_removed() -> None:
    world = World()
    world.source.sessions = {"a": 20}
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None))
    await reconciler.round(world.runtime, scaling(ingress={"enabled": True, "host": "a.example"}), view, world.event)
    assert world.kube.called("apply") == ["Service", "Ingress"]
    world.now += 15
    disabled = webappscaling.parse_valid(
        {
            "metadata": {"name": "shop", "namespace": NAMESPACE, "uid": "uid-1", "generation": 2},
            "spec": {"goldenImage": {"name": "golden"}, "vmTemplate": {"spec": {"domain": {}}}},
        }
    )
    await reconciler.round(world.runtime, disabled, view, world.event)
    world.now += 15
    await reconciler.round(world.runtime, disabled, view, world.event)
    assert world.kube.called("apply") == ["Service", "Ingress", "Service"]
    assert world.kube.called("delete_ingress") == ["shop"]


FOREIGN = {"metadata": {"name": "shop", "ownerReferences": [{"uid": "someone-else", "controller": True}]}}


@pytest.mark.parametrize("kind", ["Service", "Ingress"])
async def test_an_object_of_another_owner_in_our_name_is_never_touched(kind: str) -> None:
    """An admin's Service (or Ingress) named like the WebAppScaling: not re-selected, not adopted, not
    deleted — a Stalled condition and one Event name it, and scaling goes on."""
    world = World()
    world.kube.network[(kind, "shop")] = {"kind": kind, **FOREIGN}
    world.source.sessions = {"a": 150}
    reconciler = Reconciler(NAMESPACE, "shop")
    spec = scaling(ingress={"enabled": True, "host": "a.example"})
    for _ in range(3):
        await reconciler.round(world.runtime, spec, ready_fleet(("a", "10.0.0.1", None)), world.event)
        world.now += 15
    assert kind not in world.kube.called("apply")
    assert world.kube.network[(kind, "shop")] == {"kind": kind, **FOREIGN}
    stalled = condition(world.kube.statuses[-1], "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "NameConflict")
    assert f"{kind} prod/shop exists and is not controlled by this WebAppScaling" in stalled["message"]
    assert world.reasons().count("NameConflict") == 1
    assert world.kube.called("create_vm"), "scaling goes on"
    # the admin removes their object: the next round applies ours and the condition clears
    del world.kube.network[(kind, "shop")]
    await reconciler.round(world.runtime, spec, ready_fleet(("a", "10.0.0.1", None)), world.event)
    assert kind in world.kube.called("apply")
    assert condition(world.kube.statuses[-1], "Stalled")["status"] == "False"


async def test_an_ingress_of_another_owner_is_not_deleted_when_ours_is_disabled() -> None:
    world = World()
    world.kube.network[("Ingress", "shop")] = {"kind": "Ingress", **FOREIGN}
    world.source.sessions = {"a": 20}
    await Reconciler(NAMESPACE, "shop").round(
        world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None)), world.event
    )
    assert world.kube.called("delete_ingress") == []
    assert ("Ingress", "shop") in world.kube.network


async def test_a_refused_drain_is_a_warning_and_is_retried_next_round() -> None:
    world = World()
    world.source.sessions = {"a": 10, "b": 3}
    world.drainer.refuse = {"http://10.0.0.2:9100/drain"}
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    await reconciler.round(world.runtime, scaling(), view, world.event)
    world.now += 15
    await reconciler.round(world.runtime, scaling(), view, world.event)
    assert [m for m, _, _ in world.drainer.calls] == ["POST", "POST"]
    assert world.reasons().count("FailedDrain") == 2


@pytest.mark.parametrize(
    ("sessions", "available", "reason"),
    [
        ({"a": 10, "b": 12}, "True", "ValidMetricFound"),
        ({"a": 10}, "True", "ValidMetricFound"),
        ({}, "False", "FailedGetSessionMetrics"),
    ],
    ids=["all-answer", "one-fails", "none-answer"],
)
async def test_metrics_available_follows_the_agents(sessions: dict[str, float], available: str, reason: str) -> None:
    world = World()
    world.source.sessions = sessions
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", None))
    await Reconciler(NAMESPACE, "shop").round(world.runtime, scaling(), view, world.event)
    metrics = condition(world.kube.statuses[-1], "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == (available, reason)
    if sessions == {"a": 10}:
        assert "b: connection refused" in metrics["message"]


def test_the_fakes_speak_the_fleet_of_the_real_records() -> None:
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    assert [(s.name, s.phase, s.ip) for s in view.states()] == [
        ("a", fleet.model.VMPhase.READY, "10.0.0.1"),
        ("b", fleet.model.VMPhase.DRAINING, "10.0.0.2"),
    ]


# ---- drain modes ------------------------------------------------------------------------------------------

B_DRAIN = "http://10.0.0.2:9100/drain"


async def test_an_agent_that_cannot_do_the_drain_mode_is_reported_and_its_vm_is_never_deleted() -> None:
    """The spec says RefuseNewSessions (the default), b's agent runs a source that only drains by
    readiness: it answers 409. b has not begun to drain, so it is neither 'drained' at 0 sessions nor
    after the drain timeout; one Warning says why; DrainReady says so. A spec in a mode the agent can do
    drains it, and then it goes."""
    world = World()
    world.source.sessions = {"a": 10, "b": 0}
    world.drainer.modes[B_DRAIN] = ("Readiness",)
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    for _ in range(2):
        await reconciler.round(world.runtime, scaling(), view, world.event)
        world.now += 3600  # past the drain timeout too
    assert world.kube.called("delete_vm") == []
    assert world.drainer.posted_modes == ["RefuseNewSessions", "RefuseNewSessions"]
    assert world.reasons().count("DrainModeUnsupported") == 1
    drain = condition(world.kube.statuses[-1], "DrainReady")
    assert (drain["status"], drain["reason"]) == ("False", "DrainModeUnsupported")
    assert "VM b: the agent refused drain mode RefuseNewSessions (it supports Readiness)" in drain["message"]
    assert "it is not drained and is kept" in drain["message"]

    readiness = scaling(generation=2, scaleIn={"drain": {"mode": "Readiness"}})
    await reconciler.round(world.runtime, readiness, view, world.event)
    assert world.drainer.posted_modes[-1] == "Readiness"
    assert world.kube.called("delete_vm") == ["b"]
    drain = condition(world.kube.statuses[-1], "DrainReady")
    assert (drain["status"], drain["reason"]) == ("True", "DrainModeSupported")
    assert world.kube.statuses[-1]["drainMode"] == "Readiness"


async def test_a_changed_drain_mode_is_sent_to_the_agents_already_draining() -> None:
    world = World()
    world.source.sessions = {"a": 10, "b": 5}
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    await reconciler.round(world.runtime, scaling(scaleIn={"drain": {"mode": "Readiness"}}), view, world.event)
    world.now += 15
    for _ in range(2):
        await reconciler.round(world.runtime, scaling(generation=2), view, world.event)
        world.now += 15
    assert world.drainer.posted_modes == ["Readiness", "RefuseNewSessions"]
    assert world.kube.statuses[-1]["drainMode"] == "RefuseNewSessions"


async def test_a_refused_mode_is_forgotten_when_the_vm_returns_to_service() -> None:
    world = World()
    world.source.sessions = {"a": 10, "b": 4}
    world.drainer.modes[B_DRAIN] = ("Readiness",)
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    await reconciler.round(world.runtime, scaling(), view, world.event)
    assert "b" in reconciler.drain_refused
    world.source.sessions = {"a": 150, "b": 4}  # the load came back: b returns to service
    world.now += 15
    await reconciler.round(world.runtime, scaling(), view, world.event)
    assert ("DELETE", B_DRAIN, None) in world.drainer.calls
    assert reconciler.drain_refused == {}
    assert condition(world.kube.statuses[-1], "DrainReady")["status"] == "True"


async def test_drain_mode_in_status_and_disabled_drains() -> None:
    world = World()
    world.source.sessions = {"a": 10}
    view = ready_fleet(("a", "10.0.0.1", None))
    await Reconciler(NAMESPACE, "shop").round(world.runtime, scaling(), view, world.event)
    assert world.kube.statuses[-1]["drainMode"] == "RefuseNewSessions"
    await Reconciler(NAMESPACE, "shop").round(
        world.runtime, scaling(scaleIn={"drain": {"enabled": False}}), view, world.event
    )
    assert world.kube.statuses[-1]["drainMode"] == "Disabled"
    drain = condition(world.kube.statuses[-1], "DrainReady")
    assert (drain["status"], drain["reason"]) == ("False", "DrainDisabled")


async def test_a_readiness_drain_behind_an_ingress_controller_that_drops_not_ready_vms_is_reported() -> None:
    world = World()
    world.source.sessions = {"a": 10}
    spec = scaling(ingress={"enabled": True, "controller": "IngressNginx"}, scaleIn={"drain": {"mode": "Readiness"}})
    await Reconciler(NAMESPACE, "shop").round(world.runtime, spec, ready_fleet(("a", "10.0.0.1", None)), world.event)
    drain = condition(world.kube.statuses[-1], "DrainReady")
    assert (drain["status"], drain["reason"]) == ("False", "DrainLosesSessions")
    assert "ingress-nginx drops not-ready endpoints" in drain["message"]


# ---- the HTTPRoute ----------------------------------------------------------------------------------------

ROUTE = {"parentRefs": [{"name": "public", "namespace": "gateways"}], "hostnames": ["shop.example.com"]}
CRD = "httproutes.gateway.networking.k8s.io"


def routed(generation: int = 1, **spec: object) -> webappscaling.WebAppScaling | webappscaling.InvalidWebAppScaling:
    return scaling(generation=generation, **{"route": ROUTE, "ingress": {"enabled": True, "host": "a.example"}, **spec})


async def rounds(world: World, reconciler: Reconciler, was: object, n: int = 1, step: float = 15) -> None:
    view = ready_fleet(("a", "10.0.0.1", None))
    for _ in range(n):
        await reconciler.round(world.runtime, was, view, world.event)  # type: ignore[arg-type]
        world.now += step


async def test_without_gateway_api_the_route_is_a_condition_and_nothing_else_changes() -> None:
    world = World()
    world.source.sessions = {"a": 150}
    reconciler = Reconciler(NAMESPACE, "shop")
    await rounds(world, reconciler, routed(), n=3, step=10)
    assert world.kube.called("apply") == ["Service", "Ingress"]
    assert world.kube.called("create_vm"), "scaling goes on"
    route = condition(world.kube.statuses[-1], "RouteReady")
    assert (route["status"], route["reason"]) == ("False", "GatewayAPINotInstalled")
    assert "the cluster has no CRD httproutes.gateway.networking.k8s.io" in route["message"]
    assert world.reasons().count("GatewayAPINotInstalled") == 1
    assert len(world.kube.called("get_crd")) == 1, "looked again after 30 s, not every round"
    world.now += 30
    world.kube.crds[CRD] = fakes.httproute_crd("standard")  # someone installs Gateway API
    await rounds(world, reconciler, routed())
    assert "HTTPRoute" in world.kube.called("apply")
    assert condition(world.kube.statuses[-1], "RouteReady")["status"] == "True"


async def test_the_route_is_applied_with_persistence_where_served_and_reported_where_not() -> None:
    world = World()
    world.kube.crds[CRD] = fakes.httproute_crd("experimental")
    world.source.sessions = {"a": 10}
    wanted = {**ROUTE, "sessionPersistence": {"enabled": True}}
    await rounds(world, Reconciler(NAMESPACE, "shop"), routed(route=wanted))
    [rule] = world.kube.network[("HTTPRoute", "shop")]["spec"]["rules"]
    assert rule["sessionPersistence"]["cookie"]["name"] == "WAS_STICKY"
    assert rule["retry"] == {"codes": [503], "attempts": 2}
    route = condition(world.kube.statuses[-1], "RouteReady")
    assert (route["status"], route["reason"]) == ("True", "RouteApplied")
    assert route["message"] == (
        "HTTPRoute prod/shop applied: parents Gateway gateways/public; retry on 503 up to 2 times; "
        "session cookie WAS_STICKY"
    )

    world = World()
    world.kube.crds[CRD] = fakes.httproute_crd("standard")
    world.source.sessions = {"a": 10}
    await rounds(world, Reconciler(NAMESPACE, "shop"), routed(route=wanted))
    [rule] = world.kube.network[("HTTPRoute", "shop")]["spec"]["rules"]
    assert "sessionPersistence" not in rule
    route = condition(world.kube.statuses[-1], "RouteReady")
    assert (route["status"], route["reason"]) == ("False", "SessionPersistenceUnsupported")
    assert "(standard channel v1.7.0) has no HTTPRoute sessionPersistence" in route["message"]


async def test_a_route_removed_from_the_spec_is_deleted_but_only_ours() -> None:
    world = World()
    world.kube.crds[CRD] = fakes.httproute_crd("standard")
    world.source.sessions = {"a": 10}
    reconciler = Reconciler(NAMESPACE, "shop")
    await rounds(world, reconciler, routed())
    world.kube.network[("HTTPRoute", "shop")]["metadata"]["ownerReferences"][0]["uid"] = "uid-1"
    await rounds(world, reconciler, scaling(generation=2))
    assert world.kube.called("delete_route") == ["shop"]
    assert "RouteReady" not in {c["type"] for c in world.kube.statuses[-1]["conditions"]}

    world = World()
    world.kube.network[("HTTPRoute", "shop")] = {"kind": "HTTPRoute", **FOREIGN}
    await rounds(world, Reconciler(NAMESPACE, "shop"), scaling())
    assert world.kube.called("delete_route") == []


async def test_an_httproute_of_another_owner_in_our_name_is_never_touched() -> None:
    world = World()
    world.kube.crds[CRD] = fakes.httproute_crd("experimental")
    world.kube.network[("HTTPRoute", "shop")] = {"kind": "HTTPRoute", **FOREIGN}
    world.source.sessions = {"a": 10}
    await rounds(world, Reconciler(NAMESPACE, "shop"), routed(), n=2)
    assert "HTTPRoute" not in world.kube.called("apply")
    stalled = condition(world.kube.statuses[-1], "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "NameConflict")
    assert "HTTPRoute prod/shop exists and is not controlled by this WebAppScaling" in stalled["message"]
    assert condition(world.kube.statuses[-1], "RouteReady")["reason"] == "NameConflict"


async def test_a_route_the_apiserver_refuses_is_reported_and_nothing_else_breaks() -> None:
    world = World()
    world.kube.crds[CRD] = fakes.httproute_crd("experimental")
    body = '{"message": "HTTPRoute \\"shop\\" is invalid: spec.rules[0].filters[0].type: Unsupported value"}'
    world.kube.refuse_apply["HTTPRoute"] = ApiException(status=422, reason="Unprocessable Entity")
    world.kube.refuse_apply["HTTPRoute"].body = body
    world.source.sessions = {"a": 150}
    await rounds(world, Reconciler(NAMESPACE, "shop"), routed(route={**ROUTE, "filters": [{"type": "Bogus"}]}))
    route = condition(world.kube.statuses[-1], "RouteReady")
    assert (route["status"], route["reason"]) == ("False", "RouteRejected")
    assert "the apiserver refused HTTPRoute prod/shop: " in route["message"]
    assert "filters[0].type: Unsupported value" in route["message"]
    assert world.kube.called("create_vm") and world.kube.called("delete_vm") == []


@pytest.mark.parametrize(
    ("drain", "filters", "status", "reason"),
    [
        ({"mode": "Readiness"}, [], "False", "DrainLosesSessions"),
        ({}, [], "False", "RetryNotImplemented"),
        (
            {},
            [{"type": "ExtensionRef", "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": "r"}}],
            "True",
            "DrainModeSupported",
        ),
    ],
    ids=["readiness", "refuse-without-retry", "refuse-with-traefik-retry"],
)
async def test_what_a_traefik_gateway_does_to_a_drain_is_reported(
    drain: dict[str, object], filters: list[dict[str, object]], status: str, reason: str
) -> None:
    world = World()
    world.kube.crds[CRD] = fakes.httproute_crd("experimental")
    world.kube.gateways[("gateways", "public")] = {"spec": {"gatewayClassName": "traefik"}}
    world.kube.gateway_classes["traefik"] = {"spec": {"controllerName": "traefik.io/gateway-controller"}}
    world.source.sessions = {"a": 10}
    spec = routed(route={**ROUTE, "filters": filters}, scaleIn={"drain": drain}, ingress={"enabled": False})
    await rounds(world, Reconciler(NAMESPACE, "shop"), spec)
    found = condition(world.kube.statuses[-1], "DrainReady")
    assert (found["status"], found["reason"]) == (status, reason)
    if status == "False":
        assert "Gateway gateways/public (GatewayClass traefik) is served by Traefik" in found["message"]


async def test_an_applied_route_is_reapplied_per_generation_and_every_five_minutes() -> None:
    world = World()
    world.kube.crds[CRD] = fakes.httproute_crd("standard")
    world.source.sessions = {"a": 10}
    reconciler = Reconciler(NAMESPACE, "shop")
    await rounds(world, reconciler, routed(), n=4)
    assert world.kube.called("apply").count("HTTPRoute") == 1
    await rounds(world, reconciler, routed(generation=2, route={**ROUTE, "path": "/shop"}))
    assert world.kube.called("apply").count("HTTPRoute") == 2
    world.now += 300
    await rounds(world, reconciler, routed(generation=2, route={**ROUTE, "path": "/shop"}))
    assert world.kube.called("apply").count("HTTPRoute") == 3


async def test_a_vm_create_the_apiserver_forbids_is_stalled_until_a_create_succeeds() -> None:
    """A 403 on the VM create repeats every round until a person grants the RBAC: Stalled says so (kstatus
    Failed, Argo CD Degraded) instead of the object reading as in progress for ever."""
    world = World()
    world.source.sessions = {"a": 150}
    allowed = world.kube.create_vm

    async def forbidden(body: dict) -> dict:
        raise ApiException(status=403, reason="Forbidden")

    world.kube.create_vm = forbidden  # type: ignore[method-assign]
    reconciler = Reconciler(NAMESPACE, "shop")
    await reconciler.round(world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None)), world.event)
    stalled = condition(world.kube.statuses[-1], "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "FailedCreate")
    assert "(HTTP 403)" in stalled["message"] and "'create' on virtualmachines (kubevirt.io)" in stalled["message"]
    assert condition(world.kube.statuses[-1], "Reconciling")["status"] == "False"

    world.kube.create_vm = allowed  # type: ignore[method-assign]
    world.now += 15
    await reconciler.round(world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None)), world.event)
    assert world.kube.called("create_vm")
    assert condition(world.kube.statuses[-1], "Stalled")["status"] == "False"
    assert condition(world.kube.statuses[-1], "Reconciling")["status"] == "True"


def refusal(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="Unprocessable Entity" if status == 422 else "Internal Server Error")
    error.body = json.dumps({"message": message})
    return error


async def test_an_ingress_the_apiserver_refuses_stops_nothing_else_and_stalls_with_its_message() -> None:
    """The bug of issue 12: a 422 on the Ingress apply ended the round before the decision, every round, so
    load never scaled up and the status kept an old Ready. Now the VMs are created, Stalled names the
    refused Ingress with the apiserver's words, one Warning Event is posted however many rounds fail, and
    the apply is retried each round."""
    world = World()
    world.kube.refuse_apply["Ingress"] = refusal(422, "Ingress.networking.k8s.io shop is invalid: bad annotation")
    world.source.sessions = {"a": 350}
    reconciler = Reconciler(NAMESPACE, "shop")
    await rounds(world, reconciler, scaling(ingress={"enabled": True, "host": "shop.example.com"}), n=3)
    assert len(world.kube.called("create_vm")) >= 2, "no scale-up while the Ingress was refused"
    last = world.kube.statuses[-1]
    stalled, ready = condition(last, "Stalled"), condition(last, "Ready")
    assert (stalled["status"], stalled["reason"]) == ("True", "IngressRejected")
    assert "applying Ingress prod/shop: the apiserver refused it (HTTP 422)" in stalled["message"]
    assert "bad annotation" in stalled["message"]
    assert (ready["status"], ready["reason"]) == ("False", "IngressRejected")
    assert condition(last, "Reconciling")["status"] == "False"
    assert [r for t, r, _ in world.events if t == "Warning"].count("IngressRejected") == 1
    assert world.kube.called("apply").count("Ingress") == 3
    assert world.kube.called("apply").count("Service") == 3  # the network step is not marked done

    del world.kube.refuse_apply["Ingress"]
    await rounds(world, reconciler, scaling(ingress={"enabled": True, "host": "shop.example.com"}))
    assert condition(world.kube.statuses[-1], "Stalled")["status"] == "False"
    assert condition(world.kube.statuses[-1], "Ready")["reason"] != "IngressRejected"


async def test_a_service_apply_that_times_out_is_ready_false_and_retried_not_stalled() -> None:
    world = World()
    world.kube.refuse_apply["Service"] = refusal(500, "etcdserver: request timed out")
    world.source.sessions = {"a": 150}
    await rounds(world, Reconciler(NAMESPACE, "shop"), scaling(), n=2)
    last = world.kube.statuses[-1]
    ready = condition(last, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ServiceApplyFailed")
    assert "HTTP 500: etcdserver: request timed out" in ready["message"]
    assert condition(last, "Stalled")["status"] == "False"
    assert world.kube.called("create_vm")


async def test_a_failed_status_patch_does_not_stop_the_actions_and_is_retried() -> None:
    world = World()
    world.source.sessions = {"a": 150}
    patched = world.kube.patch_status

    async def failing(namespace: str, name: str, status: dict) -> None:
        raise ApiException(status=503, reason="Service Unavailable")

    world.kube.patch_status = failing  # type: ignore[method-assign]
    reconciler = Reconciler(NAMESPACE, "shop")
    await rounds(world, reconciler, scaling(), n=2)
    assert world.kube.called("create_vm")
    assert world.reasons().count("StatusPatchFailed") == 1
    world.kube.patch_status = patched  # type: ignore[method-assign]
    await rounds(world, reconciler, scaling())
    assert world.kube.statuses, "the status is written once the apiserver takes it"
    assert condition(world.kube.statuses[-1], "Ready")["reason"] != "StatusPatchFailed"


async def test_an_unreadable_drain_token_keeps_a_draining_vm_draining_and_the_rest_goes_on() -> None:
    """Returning a VM to service without telling its agent would leave it refusing users: without its token
    it stays draining this round, while the rest of the decision (a scale-up) is carried out."""
    world = World()

    async def forbidden(namespace: str, name: str, key: str) -> str | None:
        raise ApiException(status=403, reason="Forbidden")

    world.kube.read_secret_key = forbidden  # type: ignore[method-assign]
    world.source.sessions = {"a": 400, "b": 60}
    view = ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", DRAINING))
    spec = scaling(sessions={"agent": {"drainTokenSecretRef": {"name": "drain"}}})
    await Reconciler(NAMESPACE, "shop").round(world.runtime, spec, view, world.event)
    assert world.drainer.calls == []
    assert ("b", {"metadata": {"annotations": {"webappscaler.io/draining-since": None}}}) not in world.kube.called(
        "patch_vm"
    )
    assert world.kube.called("create_vm")
    stalled = condition(world.kube.statuses[-1], "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "DrainTokenRejected")


async def test_no_agent_answering_is_an_unknown_session_count_not_zero() -> None:
    """`kubectl get was` prints status.sessions.current: with every scrape failed it must be empty, not 0."""
    world = World()
    world.source.sessions = {}
    await Reconciler(NAMESPACE, "shop").round(
        world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", None)), world.event
    )
    assert world.kube.statuses[-1]["sessions"]["current"] is None
    world.source.sessions = {"a": 7}
    world.now += 15
    await Reconciler(NAMESPACE, "shop").round(
        world.runtime, scaling(), ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", None)), world.event
    )
    assert world.kube.statuses[-1]["sessions"]["current"] == 7


def test_an_unreachable_apiserver_is_a_transport_error_not_a_bug() -> None:
    """During an outage every step fails with urllib3's MaxRetryError: one log line each, no traceback."""
    import urllib3

    from webapp_scaler.reconcile import _transport_error

    assert _transport_error(urllib3.exceptions.MaxRetryError(urllib3.HTTPConnectionPool("x"), "/api", None))
    assert not _transport_error(KeyError("status"))
