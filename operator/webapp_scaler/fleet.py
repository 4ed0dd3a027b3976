"""What the cluster says about one WebAppScaling's VMs, turned into the engine's `VMState`s.

Pure: the operator's watch indexes hand over compact records of VirtualMachines, their VMIs and
their DataVolumes; nothing here calls the API. A VM's phase comes from (in this order) its
`draining-since` annotation, `runStrategy: Halted` (with the warm-pool annotation a warm VM, without it a
VM a person stopped), its DataVolume's clone phase, and its VMI's Ready condition — never from the
operator's memory, so a restarted operator sees exactly what the last one left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webapp_scaler import addresses, model, webappscaling
from webapp_scaler.constants import (
    ANNOTATION_DRAINING_SINCE,
    ANNOTATION_PROTECTED,
    ANNOTATION_STARTED_AT,
    ANNOTATION_WARM,
    LABEL_SCALING,
)
from webapp_scaler.sources.base import Reading, Target

FAILED_VM_STATUSES = frozenset({"ErrorUnschedulable", "ErrorPvcNotFound", "DataVolumeError", "CrashLoopBackOff"})


def parse_time(value: Any) -> float | None:
    """RFC 3339 (as the API writes it) to epoch seconds; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_time(epoch: float, *, precise: bool = True) -> str:
    """Epoch seconds to RFC 3339 in UTC; `precise` keeps microseconds (a drain start must survive a round
    trip), without it whole seconds as Kubernetes writes its own timestamps."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ" if precise else "%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class VMRecord:
    namespace: str
    name: str
    scaling: str
    created_at: float
    run_strategy: str
    warm: bool
    protected: bool
    draining_since: float | None
    started_at: float | None
    datavolumes: tuple[str, ...]
    printable_status: str
    deleting: bool


@dataclass(frozen=True, slots=True)
class VMIRecord:
    namespace: str
    name: str
    uid: str
    phase: str
    ip: str | None
    ready: bool
    ready_since: float | None


@dataclass(frozen=True, slots=True)
class PodRecord:
    """A virt-launcher Pod: which VMI controls it and the addresses the cluster gave it."""

    namespace: str
    name: str
    vmi_uid: str  # the uid of its controller VirtualMachineInstance ("" when none)
    ips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DVRecord:
    namespace: str
    name: str
    phase: str
    progress: str


def vm_record(body: Mapping[str, Any]) -> VMRecord:
    meta, spec = body.get("metadata", {}), body.get("spec", {})
    annotations = meta.get("annotations") or {}
    run_strategy = spec.get("runStrategy") or ("Always" if spec.get("running") else "Halted")
    return VMRecord(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        scaling=(meta.get("labels") or {}).get(LABEL_SCALING, ""),
        created_at=parse_time(meta.get("creationTimestamp")) or 0.0,
        run_strategy=run_strategy,
        warm=annotations.get(ANNOTATION_WARM) == "true",
        protected=annotations.get(ANNOTATION_PROTECTED) == "true",
        draining_since=parse_time(annotations.get(ANNOTATION_DRAINING_SINCE)),
        started_at=parse_time(annotations.get(ANNOTATION_STARTED_AT)),
        datavolumes=tuple(t.get("metadata", {}).get("name", "") for t in spec.get("dataVolumeTemplates") or []),
        printable_status=(body.get("status") or {}).get("printableStatus", ""),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def vmi_record(body: Mapping[str, Any]) -> VMIRecord:
    meta, status = body.get("metadata", {}), body.get("status") or {}
    ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    interfaces = status.get("interfaces") or []
    ip = interfaces[0].get("ipAddress") if interfaces else None
    return VMIRecord(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        phase=status.get("phase", ""),
        ip=ip or None,
        ready=ready.get("status") == "True",
        ready_since=parse_time(ready.get("lastTransitionTime")) if ready.get("status") == "True" else None,
    )


def pod_record(body: Mapping[str, Any]) -> PodRecord:
    meta, status = body.get("metadata", {}), body.get("status") or {}
    controller: Mapping[str, Any] = next(
        (
            ref
            for ref in meta.get("ownerReferences") or []
            if ref.get("controller") and ref.get("kind") == "VirtualMachineInstance"
        ),
        {},
    )
    ips = [p.get("ip") for p in status.get("podIPs") or []] or [status.get("podIP")]
    return PodRecord(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        vmi_uid=str(controller.get("uid", "")),
        ips=tuple(ip for ip in ips if isinstance(ip, str) and ip),
    )


def dv_record(body: Mapping[str, Any]) -> DVRecord:
    meta, status = body.get("metadata", {}), body.get("status") or {}
    return DVRecord(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        phase=status.get("phase", ""),
        progress=str(status.get("progress", "N/A")),
    )


def phase_of(vm: VMRecord, vmi: VMIRecord | None, dvs: Mapping[str, DVRecord]) -> model.VMPhase:
    if vm.draining_since is not None:
        return model.VMPhase.DRAINING
    if vm.run_strategy == "Halted":
        # the operator halts only warm-pool VMs, so any other Halted VM is a person's doing
        return model.VMPhase.WARM if vm.warm else model.VMPhase.STOPPED
    clones = [dvs.get(name) for name in vm.datavolumes]
    if any(dv is not None and dv.phase == "Failed" for dv in clones) or vm.printable_status in FAILED_VM_STATUSES:
        return model.VMPhase.FAILED
    if any(dv is None or dv.phase != "Succeeded" for dv in clones):
        return model.VMPhase.CLONING
    if vmi is not None and vmi.ready:
        return model.VMPhase.READY
    return model.VMPhase.STARTING if vm.started_at is not None else model.VMPhase.BOOTING


@dataclass(frozen=True, slots=True)
class Fleet:
    """One WebAppScaling's VMs with what the cluster says about each."""

    vms: tuple[VMRecord, ...]
    vmis: Mapping[str, VMIRecord]
    dvs: Mapping[str, DVRecord]
    pod_ips: Mapping[str, tuple[tuple[str, ...], ...]] = dataclasses.field(default_factory=dict)
    """VMI uid → the addresses of each virt-launcher Pod that VMI controls (normally exactly one)."""

    @classmethod
    def of(
        cls,
        vms: Iterable[VMRecord],
        vmis: Iterable[VMIRecord],
        dvs: Iterable[DVRecord],
        pods: Iterable[PodRecord] = (),
    ) -> Fleet:
        live = tuple(sorted((vm for vm in vms if not vm.deleting), key=lambda vm: vm.name))
        pod_ips: dict[str, tuple[tuple[str, ...], ...]] = {}
        for pod in pods:
            if pod.vmi_uid:
                pod_ips[pod.vmi_uid] = (*pod_ips.get(pod.vmi_uid, ()), pod.ips)
        return cls(live, {vmi.name: vmi for vmi in vmis}, {dv.name: dv for dv in dvs}, pod_ips)

    def address(self, vmi: VMIRecord, own: Collection[str]) -> addresses.Verdict:
        """The VMI's address, when its virt-launcher Pod confirms it (see `addresses`)."""
        return addresses.verify(vmi.ip, self.pod_ips.get(vmi.uid, ()) if vmi.uid else (), own)

    def address_problems(self, own: Collection[str]) -> dict[str, str]:
        """VM name → why its VMI's address is not used."""
        found = {name: self.address(vmi, own).problem for name, vmi in self.vmis.items()}
        return {name: problem for name, problem in found.items() if problem}

    def states(self, own: Collection[str] = ()) -> list[model.VMState]:
        """Each VM as the cluster shows it, without sessions: the round corrects these with its
        expectations once, then scrapes, decides, acts and reports on that one list. A VM's address is
        its VMI's only when verified (`addresses.verify`); `own` are the operator's own addresses."""
        out = []
        for vm in self.vms:
            vmi = self.vmis.get(vm.name)
            out.append(
                model.VMState(
                    name=vm.name,
                    phase=phase_of(vm, vmi, self.dvs),
                    created_at=vm.created_at,
                    ready_at=vmi.ready_since if vmi else None,
                    started_at=vm.started_at,
                    draining_since=vm.draining_since,
                    protected=vm.protected,
                    ip=self.address(vmi, own).ip if vmi else None,
                )
            )
        return out


SCRAPED_PHASES = (model.VMPhase.READY, model.VMPhase.DRAINING)


def scrape_targets(states: Sequence[model.VMState], agent: webappscaling.AgentSpec) -> list[Target]:
    """Agents worth asking: Ready VMs and draining ones (whose count decides when they may go)."""
    return [
        Target(s.name, agent_url(s.ip, agent.port, agent.path)) for s in states if s.phase in SCRAPED_PHASES and s.ip
    ]


def with_sessions(states: Sequence[model.VMState], readings: Sequence[Reading]) -> list[model.VMState]:
    """The round's states with this round's session counts (None where the scrape failed)."""
    sessions = {r.vm: r.sessions for r in readings}
    return [dataclasses.replace(s, sessions=sessions.get(s.name)) for s in states]


def agent_url(ip: str, port: int, path: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}{path}"
