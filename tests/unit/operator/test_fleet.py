"""fleet: from VM/VMI/DataVolume bodies as the API returns them to the engine's VM states."""

from __future__ import annotations

from typing import Any

import pytest

from webapp_scaler import model, webappscaling
from webapp_scaler.fleet import (
    Fleet,
    agent_url,
    dv_record,
    format_time,
    parse_time,
    pod_record,
    scrape_targets,
    vm_record,
    vmi_record,
    with_sessions,
)
from webapp_scaler.model import VMPhase
from webapp_scaler.sources.base import Reading

T0 = "2026-11-27T07:00:00Z"


def vm(name: str = "shop-a", *, annotations: dict[str, str] | None = None, run: str = "Always", **meta: Any) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "prod",
            "creationTimestamp": T0,
            "labels": {"webappscaler.io/scaling": "shop"},
            "annotations": annotations or {},
            **meta,
        },
        "spec": {"runStrategy": run, "dataVolumeTemplates": [{"metadata": {"name": f"{name}-rootdisk"}}]},
        "status": {},
    }


def pod(name: str = "shop-a", ip: str | None = "10.0.0.5", *, owner_uid: str | None = None) -> dict:
    """The virt-launcher Pod of VMI `name`; the cluster wrote its address (status is a subresource)."""
    owner = {"kind": "VirtualMachineInstance", "uid": owner_uid or f"uid-{name}", "controller": True}
    status = {"podIP": ip, "podIPs": [{"ip": ip}]} if ip else {}
    return {"metadata": {"name": f"virt-launcher-{name}-abcde", "ownerReferences": [owner]}, "status": status}


def vmi(name: str = "shop-a", *, ready: bool = True, ip: str | None = "10.0.0.5") -> dict:
    status: dict[str, Any] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": T0}],
    }
    if ip:
        status["interfaces"] = [{"ipAddress": ip, "name": "default"}]
    return {"metadata": {"name": name, "namespace": "prod", "uid": f"uid-{name}"}, "status": status}


def dv(name: str = "shop-a-rootdisk", phase: str = "Succeeded") -> dict:
    return {"metadata": {"name": name, "namespace": "prod"}, "status": {"phase": phase, "progress": "100.0%"}}


DRAIN = {"webappscaler.io/draining-since": "2026-11-27T07:05:00.250000Z"}
WARM = {"webappscaler.io/warm": "true"}
STARTED = {"webappscaler.io/started-at": "2026-11-27T07:06:00Z"}


@pytest.mark.parametrize(
    ("vm_body", "vmi_body", "dv_body", "phase"),
    [
        (vm(), vmi(), dv(), VMPhase.READY),
        (vm(), vmi(ready=False), dv(), VMPhase.BOOTING),
        (vm(), None, dv(), VMPhase.BOOTING),
        (vm(), None, dv(phase="CloneInProgress"), VMPhase.CLONING),
        (vm(), None, None, VMPhase.CLONING),
        (vm(), None, dv(phase="Failed"), VMPhase.FAILED),
        (vm(annotations=DRAIN), vmi(ready=False), dv(), VMPhase.DRAINING),
        (vm(annotations=WARM, run="Halted"), None, dv(), VMPhase.WARM),
        (vm(annotations=WARM, run="Halted"), None, dv(phase="CloneInProgress"), VMPhase.WARM),
        (vm(annotations=STARTED), vmi(ready=False), dv(), VMPhase.STARTING),
        (vm(annotations=STARTED), vmi(), dv(), VMPhase.READY),
    ],
    ids=[
        "ready",
        "vmi-not-ready",
        "no-vmi-yet",
        "cloning",
        "datavolume-not-created-yet",
        "clone-failed",
        "draining-wins",
        "warm",
        "warm-still-cloning",
        "started-warm-vm-booting",
        "started-warm-vm-ready",
    ],
)
def test_phase(vm_body: dict, vmi_body: dict | None, dv_body: dict | None, phase: VMPhase) -> None:
    fleet = Fleet.of(
        [vm_record(vm_body)], [vmi_record(vmi_body)] if vmi_body else [], [dv_record(dv_body)] if dv_body else []
    )
    assert [(s.name, s.phase) for s in fleet.states()] == [("shop-a", phase)]


def test_states_carry_sessions_times_addresses_and_protection() -> None:
    fleet = Fleet.of(
        [vm_record(vm("shop-a")), vm_record(vm("shop-b", annotations={**DRAIN, "webappscaler.io/protected": "true"}))],
        [vmi_record(vmi("shop-a")), vmi_record(vmi("shop-b", ready=False, ip="10.0.0.6"))],
        [dv_record(dv("shop-a-rootdisk")), dv_record(dv("shop-b-rootdisk"))],
        [pod_record(pod("shop-a")), pod_record(pod("shop-b", "10.0.0.6"))],
    )
    readings = [Reading("shop-a", 12.0, None, 0.01), Reading("shop-b", None, "timed out", 5.0)]
    a, b = with_sessions(fleet.states(), readings)
    assert a == model.VMState(
        name="shop-a",
        phase=VMPhase.READY,
        created_at=parse_time(T0),
        ready_at=parse_time(T0),
        sessions=12.0,
        ip="10.0.0.5",
    )
    assert b.phase == VMPhase.DRAINING and b.protected and b.sessions is None and b.ip == "10.0.0.6"
    assert b.draining_since == pytest.approx(parse_time("2026-11-27T07:05:00.25Z"))


def test_scrape_targets_are_ready_and_draining_vms_with_an_address() -> None:
    fleet = Fleet.of(
        [vm_record(vm("shop-a")), vm_record(vm("shop-b", annotations=DRAIN)), vm_record(vm("shop-c"))],
        [
            vmi_record(vmi("shop-a")),
            vmi_record(vmi("shop-b", ready=False, ip="fd00::7")),
            vmi_record(vmi("shop-c", ready=False)),
        ],
        [dv_record(dv(f"shop-{x}-rootdisk")) for x in "abc"],
        [pod_record(pod("shop-a")), pod_record(pod("shop-b", "fd00::7")), pod_record(pod("shop-c"))],
    )
    targets = scrape_targets(fleet.states(), webappscaling.AgentSpec(port=9100, path="/metrics"))
    assert [(t.vm, t.url) for t in targets] == [
        ("shop-a", "http://10.0.0.5:9100/metrics"),
        ("shop-b", "http://[fd00::7]:9100/metrics"),
    ]


def test_vms_being_deleted_are_not_part_of_the_fleet() -> None:
    fleet = Fleet.of([vm_record(vm("shop-a", deletionTimestamp=T0)), vm_record(vm("shop-b"))], [], [])
    assert [v.name for v in fleet.vms] == ["shop-b"]


def test_time_round_trip_and_garbage() -> None:
    assert parse_time(format_time(1764226800.123456)) == pytest.approx(1764226800.123456)
    assert parse_time("yesterday") is None
    assert parse_time(None) is None
    assert agent_url("10.1.2.3", 9100, "/drain") == "http://10.1.2.3:9100/drain"


OWN = frozenset({"10.0.9.9"})


@pytest.mark.parametrize(
    ("vmi_ip", "pods", "ip", "problem"),
    [
        ("10.0.0.5", [pod()], "10.0.0.5", None),
        ("fd00::5", [pod(ip="fd00::5")], "fd00::5", None),
        (None, [pod()], None, None),
        ("10.0.0.66", [pod()], None, "VMI address 10.0.0.66 is not its virt-launcher pod's address (10.0.0.5)"),
        ("127.0.0.1", [pod()], None, "is not its virt-launcher pod's address"),
        ("127.0.0.1", [pod(ip="127.0.0.1")], None, "127.0.0.1 is a loopback address"),
        ("169.254.169.254", [pod(ip="169.254.169.254")], None, "is a link-local address"),
        ("10.0.9.9", [pod(ip="10.0.9.9")], None, "is the operator's own address"),
        ("10.0.0.5", [], None, "no virt-launcher pod of this VMI"),
        ("10.0.0.5", [pod(), pod()], None, "2 virt-launcher pods claim this VMI"),
        ("10.0.0.5", [pod(owner_uid="someone-else")], None, "no virt-launcher pod of this VMI"),
        ("10.0.0.5", [pod(ip=None)], None, "is not its virt-launcher pod's address (none yet)"),
    ],
    ids=[
        "confirmed",
        "confirmed-ipv6",
        "no-address-yet",
        "forged-vmi-address",
        "forged-loopback",
        "loopback-even-if-the-pod-says-so",
        "metadata-endpoint",
        "the-operator-itself",
        "no-pod",
        "two-pods-claim-it",
        "pod-of-another-vmi",
        "pod-without-address-yet",
    ],
)
def test_a_vms_address_is_used_only_when_its_pod_confirms_it(
    vmi_ip: str | None, pods: list[dict], ip: str | None, problem: str | None
) -> None:
    fleet = Fleet.of([vm_record(vm())], [vmi_record(vmi(ip=vmi_ip))], [dv_record(dv())], [pod_record(p) for p in pods])
    [state] = fleet.states(OWN)
    assert state.ip == ip
    found = fleet.address_problems(OWN).get("shop-a")
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
    targets = [t.url for t in scrape_targets([state], webappscaling.AgentSpec())]
    assert targets == ([] if ip is None else [agent_url(ip, 9100, "/metrics")])
