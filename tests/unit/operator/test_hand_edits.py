"""Hand edits (docs/operator.md "Hand edits") in whole rounds against the fakes: a VM a person stopped, the
golden image deleted while VMs run, and a Service or Ingress of ours deleted or changed by hand. The real
apiserver and operator show the same in tests/integration/test_hand_edits.py."""

from __future__ import annotations

from tests.unit.operator.fakes import NAMESPACE, World, dv, pod, ready_fleet, scaling, vm, vmi
from webapp_scaler import fleet, model, webappscaling
from webapp_scaler.engine.decide import decide
from webapp_scaler.reconcile import Reconciler


def condition(status: dict, kind: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == kind)


def with_stopped(name: str) -> fleet.Fleet:
    """VM "a" Ready with its VMI, and `name` cloned but halted by a person (no warm annotation, no VMI)."""
    return fleet.Fleet.of(
        [vm("a"), vm(name, run="Halted")], [vmi("a", "10.0.0.1")], [dv("a"), dv(name)], [pod("a", "10.0.0.1")]
    )


def test_a_halted_vm_outside_the_warm_pool_is_stopped_and_a_warm_one_is_warm() -> None:
    view = fleet.Fleet.of(
        [vm("w", run="Halted", annotations={"webappscaler.io/warm": "true"}), vm("s", run="Halted")], [], []
    )
    assert {s.name: s.phase for s in view.states()} == {"w": model.VMPhase.WARM, "s": model.VMPhase.STOPPED}


def test_the_engine_neither_counts_nor_touches_a_stopped_vm() -> None:
    """min 2 with one Ready and one stopped VM: one VM is created, and the stopped one is never drained or
    deleted — even when the load would have the fleet shrink."""
    was = scaling(replicas={"min": 2, "max": 4})
    assert isinstance(was, webappscaling.WebAppScaling)
    states = [
        model.VMState("a", model.VMPhase.READY, created_at=0.0, ready_at=1.0, sessions=0.0, ip="10.0.0.1"),
        model.VMState("b", model.VMPhase.STOPPED, created_at=0.0),
    ]
    decision = decide(3600.0, was.spec.scaling, states, model.EngineMemory())
    assert (decision.desired, decision.create) == (2, 1)
    assert "b" not in (*decision.drain, *decision.delete, *decision.start, *decision.return_to_service)

    low = scaling(replicas={"min": 0, "max": 4})
    assert isinstance(low, webappscaling.WebAppScaling)
    decision = decide(3600.0, low.spec.scaling, states, model.EngineMemory())
    assert "b" not in (*decision.drain, *decision.delete)


async def test_a_vm_stopped_by_hand_is_reported_once_not_counted_and_left_alone() -> None:
    world = World()
    world.source.sessions = {"a": 10}
    reconciler = Reconciler(NAMESPACE, "shop")
    spec = scaling(replicas={"min": 2, "max": 4})
    for _ in range(3):
        await reconciler.round(world.runtime, spec, with_stopped("b"), world.event)
        world.now += 15
    assert len(world.kube.called("create_vm")) == 1  # the replacement, once
    assert world.kube.called("delete_vm") == [] and world.kube.called("patch_vm") == []
    assert world.reasons().count("VMStopped") == 1
    [message] = [m for _, r, m in world.events if r == "VMStopped"]
    assert "VM b was stopped by hand" in message and "left alone" in message
    status = world.kube.statuses[-1]
    assert {row["name"]: row["phase"] for row in status["vms"]}["b"] == "Stopped"
    assert status["replicas"] == 2  # "a" and the replacement, not "b"
    assert "1 VM(s) stopped by hand and not counted: b" in condition(status, "Ready")["message"]


async def test_a_vm_started_again_is_forgotten_and_reported_anew_when_stopped_again() -> None:
    world = World()
    world.source.sessions = {"a": 10, "b": 10}
    reconciler = Reconciler(NAMESPACE, "shop")
    spec = scaling(replicas={"min": 1, "max": 4})
    await reconciler.round(world.runtime, spec, with_stopped("b"), world.event)
    world.now += 15
    await reconciler.round(
        world.runtime, spec, ready_fleet(("a", "10.0.0.1", None), ("b", "10.0.0.2", None)), world.event
    )
    assert "stopped by hand" not in condition(world.kube.statuses[-1], "Ready")["message"]
    world.now += 15
    await reconciler.round(world.runtime, spec, with_stopped("b"), world.event)
    assert world.reasons().count("VMStopped") == 2


async def test_no_clone_is_started_from_a_golden_image_deleted_after_its_last_check() -> None:
    """The golden image is re-read every 30 s while ready; a round about to create VMs reads it again, so
    its deletion a moment ago stops every create at once, and the running VMs are untouched."""
    world = World()
    world.source.sessions = {"a": 20}
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None))
    await reconciler.round(world.runtime, scaling(), view, world.event)
    world.now += 5
    await reconciler.round(world.runtime, scaling(), view, world.event)
    assert len(world.kube.called("get_golden_image")) == 1, "no create: the cached verdict serves"

    del world.kube.golden[("DataVolume", NAMESPACE, "golden")]
    world.source.sessions = {"a": 150}
    world.now += 5  # well within the 30 s the verdict is cached for
    await reconciler.round(world.runtime, scaling(), view, world.event)
    assert world.kube.called("create_vm") == []
    assert world.kube.called("delete_vm") == [] and world.kube.called("patch_vm") == []
    status = world.kube.statuses[-1]
    golden = condition(status, "GoldenImageReady")
    assert (golden["status"], golden["reason"]) == ("False", "GoldenImageNotFound")
    assert f"DataVolume {NAMESPACE}/golden does not exist" in golden["message"]
    assert (condition(status, "Stalled")["status"], condition(status, "Stalled")["reason"]) == (
        "True",
        "GoldenImageNotFound",
    )


INGRESS = {"enabled": True, "host": "a.example"}


async def test_a_service_deleted_by_hand_is_made_again_by_a_repair_without_a_round() -> None:
    world = World()
    world.source.sessions = {"a": 20}
    reconciler = Reconciler(NAMESPACE, "shop")
    spec = scaling(ingress=INGRESS)
    await reconciler.round(world.runtime, spec, ready_fleet(("a", "10.0.0.1", None)), world.event)
    assert world.kube.called("apply") == ["Service", "Ingress"]
    scrapes, statuses = len(world.source.asked), len(world.kube.statuses)

    del world.kube.network[("Service", "shop")]
    reconciler.owned_object_changed("Service", "shop", deleted=True)
    assert reconciler.repair_due.is_set()
    world.now += 1
    await reconciler.repair(world.runtime, spec, world.event)
    assert not reconciler.repair_due.is_set()
    assert ("Service", "shop") in world.kube.network
    assert world.kube.called("apply") == ["Service", "Ingress", "Service", "Ingress"]
    assert [(t, m) for t, r, m in world.events if r == "Repaired"] == [
        ("Normal", f"Service {NAMESPACE}/shop was deleted by hand: made again from the spec")
    ]
    # only the objects: no scrape, no decision, no status of its own
    assert (len(world.source.asked), len(world.kube.statuses)) == (scrapes, statuses)


async def test_a_changed_ingress_is_applied_again_at_once_without_an_event() -> None:
    """A change of a field of ours: server-side apply (force) takes it back; the object was never gone."""
    world = World()
    reconciler = Reconciler(NAMESPACE, "shop")
    spec = scaling(ingress=INGRESS)
    await reconciler.round(world.runtime, spec, ready_fleet(("a", "10.0.0.1", None)), world.event)
    world.kube.network[("Ingress", "shop")]["spec"] = {"rules": [{"host": "edited.example"}]}
    reconciler.owned_object_changed("Ingress", "shop", deleted=False)
    world.now += 1
    await reconciler.repair(world.runtime, spec, world.event)
    assert world.kube.network[("Ingress", "shop")]["spec"]["rules"][0]["host"] == "a.example"
    assert "Repaired" not in world.reasons()


async def test_an_ingress_the_operator_removed_itself_is_not_made_again_or_reported() -> None:
    world = World()
    reconciler = Reconciler(NAMESPACE, "shop")
    view = ready_fleet(("a", "10.0.0.1", None))
    await reconciler.round(world.runtime, scaling(ingress=INGRESS), view, world.event)
    disabled = scaling(generation=2)
    world.now += 15
    await reconciler.round(world.runtime, disabled, view, world.event)
    assert world.kube.called("delete_ingress") == ["shop"]
    reconciler.owned_object_changed("Ingress", "shop", deleted=True)  # the watch reports our own delete
    await reconciler.repair(world.runtime, disabled, world.event)
    assert ("Ingress", "shop") not in world.kube.network
    assert "Repaired" not in world.reasons()
    assert reconciler.deleted_by_hand == set()
