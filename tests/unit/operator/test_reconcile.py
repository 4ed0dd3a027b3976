"""Whole reconcile rounds against fakes of our own API wrapper and agent clients: what a round asks the
cluster and the agents to do, given what the watch indexes show."""

from __future__ import annotations

import pytest

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


async def test_scale_in_annotates_before_telling_the_agent_and_names_the_sessions_left() -> None:
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
    assert any("draining VM b (2 sessions left)" in m for m in messages)
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
    assert condition(world.kube.statuses[-1], "GoldenImageReady")["status"] == "False"


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
