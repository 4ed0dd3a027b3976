"""What must stay true whatever is killed or stopped, checked on snapshots of the cluster and the agents.

`Observer.poll` reads (VMs, VMIs, DataVolumes, the WebAppScaling, its Events, every agent's /metrics);
`Invariants.record` folds one `Observation` and never calls anything, so the rules read in one place:

- never more VMs than spec.replicas.max + the warm pool;
- no DataVolume outlives its VM (the garbage collector gets `orphan_grace_s` to remove one);
- no VM deleted while it holds sessions before its drain timeout: the agent's own count (read by us, at
  most `reading_age_s` before the deletion was seen) and the operator's last status row both above zero;
- no agent left draining (refusing new users) on a VM without the draining-since annotation, which the
  operator would count as Ready: `refusing_grace_s` covers the moment between the two writes.
"""

from __future__ import annotations

import concurrent.futures
import re
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import client

from webapp_scaler.constants import ANNOTATION_DRAINING_SINCE, ANNOTATION_WARM, GROUP, LABEL_SCALING, PLURAL, VERSION
from webapp_scaler_dev.demo.monitor import History, Monitor

AGENT_METRICS_PORT = 9100
_SAMPLE = re.compile(r"^(webapp_active_sessions|webapp_draining)(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$", re.M)


@dataclass(frozen=True)
class AgentReading:
    at: float
    sessions: int
    draining: bool


@dataclass(frozen=True)
class VMView:
    name: str
    uid: str
    deleting: bool
    warm: bool
    draining_since: float | None
    """Wall-clock seconds of the draining-since annotation."""


@dataclass(frozen=True)
class Observation:
    at: float
    """Monotonic seconds."""
    wall: float
    vms: tuple[VMView, ...]
    dv_owners: dict[str, tuple[str, ...]]
    """DataVolume (other than the golden image) → the uids of its owners."""
    agents: dict[str, AgentReading]
    generation: int
    observed_generation: int | None
    ready: int
    desired: int
    rows: dict[str, int | None]
    """The operator's status rows: VM → the sessions it last counted."""


@dataclass(frozen=True)
class Violation:
    at: float
    kind: str
    detail: str


@dataclass(frozen=True)
class Deletion:
    vm: str
    at: float
    drained_s: float | None
    agent_sessions: int | None
    status_sessions: int | None


@dataclass
class Invariants:
    max_vms: int
    drain_timeout_s: float
    orphan_grace_s: float = 20.0
    refusing_grace_s: float = 10.0
    reading_age_s: float = 2.0
    violations: list[Violation] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    peak_vms: int = 0
    observations: int = 0
    _live: dict[str, VMView] = field(default_factory=dict)
    _readings: dict[str, AgentReading] = field(default_factory=dict)
    _rows: dict[str, int | None] = field(default_factory=dict)
    _orphan_since: dict[str, float] = field(default_factory=dict)
    _refusing_since: dict[str, float] = field(default_factory=dict)
    _reported: set[tuple[str, str]] = field(default_factory=set)

    def _violate(self, at: float, kind: str, subject: str, detail: str) -> None:
        if (kind, subject) not in self._reported:  # once per object and rule, not once per poll
            self._reported.add((kind, subject))
            self.violations.append(Violation(at, kind, detail))

    def record(self, obs: Observation) -> None:
        self.observations += 1
        self._readings.update(obs.agents)
        self._rows.update({k: v for k, v in obs.rows.items()})
        live = {vm.name: vm for vm in obs.vms if not vm.deleting}
        self.peak_vms = max(self.peak_vms, len(live))
        if len(live) > self.max_vms:
            self._violate(obs.at, "too_many_vms", ",".join(sorted(live)), f"{len(live)} VMs > {self.max_vms}")
        for name in sorted(self._live.keys() - live.keys()):
            self._deleted(obs, self._live[name])
        self._live = live
        uids = {vm.uid for vm in obs.vms}
        for dv, owners in obs.dv_owners.items():
            if uids.intersection(owners):
                self._orphan_since.pop(dv, None)
                continue
            since = self._orphan_since.setdefault(dv, obs.at)
            if obs.at - since > self.orphan_grace_s:
                self._violate(
                    obs.at, "orphaned_datavolume", dv, f"DataVolume {dv} owned by no VM for {obs.at - since:.0f} s"
                )
        for dv in list(self._orphan_since.keys() - obs.dv_owners.keys()):
            del self._orphan_since[dv]
        for name, vm in live.items():
            reading = obs.agents.get(name)
            if reading is not None and reading.draining and vm.draining_since is None:
                since = self._refusing_since.setdefault(name, obs.at)
                if obs.at - since > self.refusing_grace_s:
                    self._violate(
                        obs.at, "refusing_but_ready", name,
                        f"agent of {name} drains for {obs.at - since:.0f} s, the VM has no draining-since annotation",
                    )  # fmt: skip
            else:
                self._refusing_since.pop(name, None)

    def _deleted(self, obs: Observation, vm: VMView) -> None:
        reading = self._readings.pop(vm.name, None)
        agent = reading.sessions if reading is not None and obs.at - reading.at <= self.reading_age_s else None
        row = self._rows.pop(vm.name, None)
        drained = None if vm.draining_since is None else obs.wall - vm.draining_since
        self.deletions.append(Deletion(vm.name, obs.at, drained, agent, row))
        if vm.warm:
            return
        timed_out = drained is not None and drained >= self.drain_timeout_s - 1
        if not timed_out and (agent or 0) > 0 and (row or 0) > 0:
            how = "undrained" if drained is None else f"{drained:.0f} s into its drain"
            self._violate(obs.at, "deleted_with_sessions", vm.name, f"{vm.name} deleted {how} holding {agent} sessions")


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def read_agent(ip: str, timeout: float = 1.0) -> AgentReading | None:
    """The agent's live count and whether it drains, from its /metrics (None: it did not answer)."""
    try:
        with urllib.request.urlopen(f"http://{ip}:{AGENT_METRICS_PORT}/metrics", timeout=timeout) as response:
            text = response.read().decode(errors="replace")
    except OSError:
        return None
    values = {name: float(value) for name, value in _SAMPLE.findall(text)}
    if "webapp_active_sessions" not in values:
        return None
    return AgentReading(time.monotonic(), int(values["webapp_active_sessions"]), values.get("webapp_draining", 0) > 0)


class Observer:
    """Reads one `Observation`, and the demo monitor's snapshot for its Events (blocking; call from a thread)."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, golden: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.monitor = Monitor(api, namespace, name)
        self.history = History()
        self.namespace, self.name, self.golden = namespace, name, golden
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="agent-read")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _list(self, group: str, version: str, plural: str, **kwargs: Any) -> list[dict[str, Any]]:
        listed: Any = self.custom.list_namespaced_custom_object(group, version, self.namespace, plural, **kwargs)
        return list(listed["items"])

    def poll(self) -> Observation:
        selector = f"{LABEL_SCALING}={self.name}"
        vmis = self._list("kubevirt.io", "v1", "virtualmachineinstances", label_selector=selector)
        ips = {}
        for vmi in vmis:
            interfaces = (vmi.get("status") or {}).get("interfaces") or []
            if interfaces and interfaces[0].get("ipAddress"):
                ips[vmi["metadata"]["name"]] = interfaces[0]["ipAddress"]
        futures = {name: self._pool.submit(read_agent, ip) for name, ip in ips.items()}
        vms = self._list("kubevirt.io", "v1", "virtualmachines", label_selector=selector)
        dvs = self._list("cdi.kubevirt.io", "v1beta1", "datavolumes")
        was: Any = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        snapshot = self.monitor.poll()
        self.history.record(snapshot)
        agents = {name: r for name, f in futures.items() if (r := f.result()) is not None}
        status = was.get("status") or {}
        views = []
        for vm in vms:
            meta = vm["metadata"]
            annotations = meta.get("annotations") or {}
            views.append(
                VMView(
                    name=meta["name"],
                    uid=meta["uid"],
                    deleting=bool(meta.get("deletionTimestamp")),
                    warm=annotations.get(ANNOTATION_WARM) == "true",
                    draining_since=parse_time(annotations.get(ANNOTATION_DRAINING_SINCE)),
                )
            )
        return Observation(
            at=time.monotonic(),
            wall=time.time(),
            vms=tuple(views),
            dv_owners={
                dv["metadata"]["name"]: tuple(o.get("uid", "") for o in dv["metadata"].get("ownerReferences") or [])
                for dv in dvs
                if dv["metadata"]["name"] != self.golden
            },
            agents=agents,
            generation=int(was["metadata"].get("generation") or 0),
            observed_generation=status.get("observedGeneration"),
            ready=int(status.get("readyReplicas") or 0),
            desired=int(status.get("desiredReplicas") or 0),
            rows={str(r.get("name")): r.get("sessions") for r in status.get("vms") or []},
        )


def converged(obs: Observation, warm_pool: int) -> bool:
    """The operator has caught up: the spec's generation observed, every wanted VM ready, no VM more than
    wanted (draining ones aside: they leave when empty) and the warm pool not over its size."""
    serving = [vm for vm in obs.vms if not vm.deleting and not vm.warm and vm.draining_since is None]
    warm = [vm for vm in obs.vms if not vm.deleting and vm.warm]
    return (
        obs.observed_generation == obs.generation
        and obs.desired > 0
        and obs.ready == obs.desired == len(serving)
        and len(warm) <= warm_pool
    )
