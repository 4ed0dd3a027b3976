"""Fakes of the operator's own wrappers (`Kube`, `SessionSource`, `DrainControl`) and builders of the
bodies the watch indexes see, so a whole reconcile round runs in a unit test without an API server.

The fakes record every call in order; a test asserts on what the round asked the cluster and the agents
to do. As kopf tests its API layer: fake our own interface, never the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from webapp_scaler import fleet, webappscaling
from webapp_scaler.k8s import AlreadyExists
from webapp_scaler.reconcile import Runtime
from webapp_scaler.sources.base import DrainError, DrainModeUnsupported, Reading, Target

T0 = "2026-11-27T07:00:00Z"
NOW = fleet.parse_time("2026-11-27T08:00:00Z") or 0.0  # an hour after the VMs were created
NAMESPACE = "prod"
NAME = "shop"


@dataclass
class FakeKube:
    """Records the calls of `webapp_scaler.k8s.Kube`; golden images and Secrets are what a test puts in."""

    golden: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    secrets: dict[tuple[str, str, str], str] = field(default_factory=dict)
    clone_allowed: bool = True
    network: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (kind, name) → object
    calls: list[tuple[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    created_secrets: list[dict[str, Any]] = field(default_factory=list)
    refuse_secrets: bool = False  # create_secret answers 403
    crds: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → CRD, e.g. the HTTPRoute CRD
    gateways: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (namespace, name) → Gateway
    gateway_classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse_apply: dict[str, ApiException] = field(default_factory=dict)  # kind → what apply raises

    async def create_vm(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if any(c == ("create_vm", body["metadata"]["name"]) for c in self.calls):
            raise AlreadyExists(body["metadata"]["name"])
        self.calls.append(("create_vm", body["metadata"]["name"]))
        return {**body, "metadata": {**body["metadata"], "uid": f"vm-uid-{body['metadata']['name']}"}}

    async def create_secret(self, body: Mapping[str, Any]) -> None:
        self.calls.append(("create_secret", body["metadata"]["name"]))
        if self.refuse_secrets:
            raise ApiException(status=403, reason="Forbidden")
        for key, value in body["stringData"].items():
            self.secrets[(body["metadata"]["namespace"], body["metadata"]["name"], key)] = value
        self.created_secrets.append(dict(body))

    async def patch_vm(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self.calls.append(("patch_vm", (name, dict(patch))))

    async def delete_vm(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_vm", name))

    async def get_golden_image(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get_golden_image", (kind, namespace, name)))
        return self.golden.get((kind, namespace, name))

    async def can_clone_from(self, namespace: str) -> bool:
        return self.clone_allowed

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        self.calls.append(("read_secret_key", (name, key)))
        return self.secrets.get((namespace, name, key))

    async def apply(self, body: Mapping[str, Any]) -> None:
        self.calls.append(("apply", body["kind"]))
        if body["kind"] in self.refuse_apply:
            raise self.refuse_apply[body["kind"]]
        self.network[(body["kind"], body["metadata"]["name"])] = dict(body)

    async def get_network_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.network.get((kind, name))

    async def delete_ingress(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_ingress", name))
        self.network.pop(("Ingress", name), None)

    async def delete_route(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_route", name))
        self.network.pop(("HTTPRoute", name), None)

    async def get_crd(self, name: str) -> dict[str, Any] | None:
        self.calls.append(("get_crd", name))
        return self.crds.get(name)

    async def get_gateway(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.gateways.get((namespace, name))

    async def get_gateway_class(self, name: str) -> dict[str, Any] | None:
        return self.gateway_classes.get(name)

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.statuses.append(dict(status))

    def called(self, what: str) -> list[Any]:
        return [arg for call, arg in self.calls if call == what]


@dataclass
class FakeSource:
    """`SessionSource`: each VM's count as the test sets it; a VM missing from `sessions` fails."""

    sessions: dict[str, float] = field(default_factory=dict)
    asked: list[list[str]] = field(default_factory=list)

    async def read(self, targets: Sequence[Target], *, metric: str, scrape_timeout: float) -> list[Reading]:
        self.asked.append([t.vm for t in targets])
        return [
            Reading(t.vm, self.sessions[t.vm], None, 0.001)
            if t.vm in self.sessions
            else Reading(t.vm, None, "connection refused", 0.001)
            for t in targets
        ]


@dataclass
class FakeDrainer:
    """`DrainControl`: records (method, url, token) and each POST's mode; URLs in `refuse` answer with an
    error, URLs in `modes` support only those drain modes (a 409 for any other)."""

    calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    posted_modes: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    modes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    async def set_draining(
        self, url: str, *, draining: bool, mode: str, token: str | None, request_timeout: float
    ) -> None:
        method = "POST" if draining else "DELETE"
        self.calls.append((method, url, token))
        if draining:
            self.posted_modes.append(mode)
        if url in self.refuse:
            raise DrainError(f"{method} {url}: HTTP 503")
        supported = self.modes.get(url)
        if draining and supported is not None and mode not in supported:
            raise DrainModeUnsupported(
                f"the agent refused drain mode {mode} (it supports {', '.join(supported)}): the push source "
                "does not see requests",
                supported,
            )


@dataclass
class World:
    """A runtime made of fakes, plus the Events a round posted."""

    kube: FakeKube = field(default_factory=FakeKube)
    source: FakeSource = field(default_factory=FakeSource)
    drainer: FakeDrainer = field(default_factory=FakeDrainer)
    now: float = NOW
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kube.golden[("DataVolume", NAMESPACE, "golden")] = {"status": {"phase": "Succeeded"}}

    @property
    def runtime(self) -> Runtime:
        return Runtime(kube=self.kube, source=self.source, drainer=self.drainer, clock=lambda: self.now)  # type: ignore[arg-type]

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


def scaling(generation: int = 1, **spec: Any) -> webappscaling.WebAppScaling | webappscaling.InvalidWebAppScaling:
    body: dict[str, Any] = {
        "goldenImage": {"name": "golden"},
        "vmTemplate": {"spec": {"domain": {}}},
        "replicas": {"min": 1, "max": 10},
        "sessions": {"targetPerVM": 40, "scrapeIntervalSeconds": 15},
        "prediction": {"enabled": False},
        "warmPool": {"size": 0},
    }
    body.update(spec)
    meta = {"name": NAME, "namespace": NAMESPACE, "uid": "uid-1", "generation": generation}
    return webappscaling.parse({"metadata": meta, "spec": body})


def vm(name: str, *, annotations: dict[str, str] | None = None, run: str = "Always") -> fleet.VMRecord:
    return fleet.vm_record(
        {
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "creationTimestamp": T0,
                "labels": {"webappscaler.io/scaling": NAME},
                "annotations": annotations or {},
            },
            "spec": {"runStrategy": run, "dataVolumeTemplates": [{"metadata": {"name": f"{name}-rootdisk"}}]},
        }
    )


def vmi(name: str, ip: str, *, ready: bool = True) -> fleet.VMIRecord:
    condition = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": T0}
    return fleet.vmi_record(
        {
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"vmi-uid-{name}"},
            "status": {"phase": "Running", "conditions": [condition], "interfaces": [{"ipAddress": ip}]},
        }
    )


def pod(vm_name: str, ip: str) -> fleet.PodRecord:
    """The VMI's virt-launcher Pod, which confirms the VMI's address."""
    owner = {"kind": "VirtualMachineInstance", "uid": f"vmi-uid-{vm_name}", "controller": True}
    return fleet.pod_record(
        {
            "metadata": {"name": f"virt-launcher-{vm_name}-x", "namespace": NAMESPACE, "ownerReferences": [owner]},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
        }
    )


def dv(vm_name: str) -> fleet.DVRecord:
    return fleet.dv_record(
        {"metadata": {"name": f"{vm_name}-rootdisk", "namespace": NAMESPACE}, "status": {"phase": "Succeeded"}}
    )


def ready_fleet(*vms: tuple[str, str, dict[str, str] | None]) -> fleet.Fleet:
    """Running VMs (name, ip, annotations) with their VMIs Ready and their clones done."""
    return fleet.Fleet.of(
        [vm(n, annotations=a) for n, _, a in vms],
        [vmi(n, ip) for n, ip, _ in vms],
        [dv(n) for n, _, _ in vms],
        [pod(n, ip) for n, ip, _ in vms],
    )


DRAINING = {"webappscaler.io/draining-since": "2026-11-27T07:59:00Z"}


def httproute_crd(channel: str) -> dict[str, Any]:
    """The HTTPRoute CRD as the API returns it, cut to what the operator reads: the experimental
    channel's v1 schema has rules[].sessionPersistence, the standard one's has not."""
    rule = {"backendRefs": {}, "matches": {}, "retry": {}}
    if channel == "experimental":
        rule["sessionPersistence"] = {}
    schema = {"properties": {"spec": {"properties": {"rules": {"items": {"properties": rule}}}}}}
    annotations = {"gateway.networking.k8s.io/channel": channel, "gateway.networking.k8s.io/bundle-version": "v1.7.0"}
    return {
        "metadata": {"name": "httproutes.gateway.networking.k8s.io", "annotations": annotations},
        "spec": {"versions": [{"name": "v1", "served": True, "schema": {"openAPIV3Schema": schema}}]},
    }
