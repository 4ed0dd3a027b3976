"""What the demo shows and what its test checks: the WebAppScaling, its VMs and its events, read from the
API every second into snapshots, and a history of everything worth reporting (peak VMs, drains, removals).

`observe` is pure (cluster objects in, snapshot out) and `History.record` only folds snapshots, so both are
easy to reason about; `Monitor.poll` is the one place that calls the API.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from webapp_scaler.constants import ANNOTATION_DRAINING_SINCE, GROUP, KIND, LABEL_SCALING, PLURAL, VERSION

SCALE_REASONS = ("ScaledUp", "ScaledDown", "Draining", "DeletedDrainedVM", "DrainTimeout")


@dataclass(frozen=True)
class VMRow:
    name: str
    phase: str
    sessions: int | None
    draining: bool


@dataclass(frozen=True)
class Event:
    key: str
    reason: str
    message: str
    count: int


@dataclass(frozen=True)
class Snapshot:
    at: float
    vms: tuple[VMRow, ...] = ()
    desired: int = 0
    ready: int = 0
    sessions: int | None = None
    average: str | None = None
    events: tuple[Event, ...] = ()

    @property
    def draining(self) -> frozenset[str]:
        return frozenset(vm.name for vm in self.vms if vm.draining)

    @property
    def last_event(self) -> Event | None:
        return self.events[-1] if self.events else None


def observe(
    at: float, was: Mapping[str, Any] | None, vms: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
) -> Snapshot:
    """One snapshot from the raw objects: VMs from the cluster (the truth about existence and the drain
    annotation), phases and sessions from the operator's status rows."""
    status = (was or {}).get("status") or {}
    rows = {row.get("name"): row for row in status.get("vms") or []}
    table = []
    for vm in sorted(vms, key=lambda v: str(v["metadata"].get("creationTimestamp", "")) + v["metadata"]["name"]):
        meta = vm["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        row = rows.get(meta["name"]) or {}
        draining = ANNOTATION_DRAINING_SINCE in (meta.get("annotations") or {})
        phase = "Draining" if draining else str(row.get("phase") or "Creating")
        sessions = row.get("sessions")
        table.append(VMRow(meta["name"], phase, None if sessions is None else int(sessions), draining))
    ordered = sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return Snapshot(
        at=at,
        vms=tuple(table),
        desired=int(status.get("desiredReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        sessions=(status.get("sessions") or {}).get("current"),
        average=(status.get("sessions") or {}).get("average"),
        events=tuple(
            Event(
                key=str(e["metadata"].get("uid", "")),
                reason=str(e.get("reason", "")),
                message=str(e.get("message", "")),
                count=int(e.get("count") or 1),
            )
            for e in ordered
        ),
    )


@dataclass(frozen=True)
class Point:
    """One snapshot reduced to what the demo's picture draws: sessions, ready VMs and VMs by phase."""

    at: float
    sessions: int | None
    desired: int
    ready: int
    phases: tuple[tuple[str, int], ...]


@dataclass
class History:
    """Folded snapshots: the figures of the summary and the facts the end-to-end test asserts."""

    peak_vms: int = 0
    """VMs serving or on their way to (the stopped VMs of the warm pool do not count)."""
    peak_ready: int = 0
    draining_since: dict[str, float] = field(default_factory=dict)
    deleted: dict[str, float] = field(default_factory=dict)
    event_counts: Counter[str] = field(default_factory=Counter)
    event_log: list[tuple[float, str, str]] = field(default_factory=list)
    timeline: list[Point] = field(default_factory=list)
    _seen_vms: set[str] = field(default_factory=set)
    _seen_events: dict[str, int] = field(default_factory=dict)

    @property
    def drained_and_deleted(self) -> list[str]:
        """VMs the operator drained and later removed: the scale-in path, end to end."""
        return [name for name in self.deleted if name in self.draining_since]

    def record(self, snapshot: Snapshot) -> None:
        names = {vm.name for vm in snapshot.vms}
        phases = Counter(vm.phase for vm in snapshot.vms)
        self.timeline.append(
            Point(snapshot.at, snapshot.sessions, snapshot.desired, snapshot.ready, tuple(sorted(phases.items())))
        )
        self.peak_vms = max(self.peak_vms, sum(1 for vm in snapshot.vms if vm.phase != "Warm"))
        self.peak_ready = max(self.peak_ready, sum(1 for vm in snapshot.vms if vm.phase == "Ready"), snapshot.ready)
        for vm in snapshot.vms:
            if vm.draining:
                self.draining_since.setdefault(vm.name, snapshot.at)
        for gone in self._seen_vms - names:
            self.deleted.setdefault(gone, snapshot.at)
        self._seen_vms |= names
        for event in snapshot.events:
            if self._seen_events.get(event.key, 0) >= event.count:
                continue
            new = event.count - self._seen_events.get(event.key, 0)
            self._seen_events[event.key] = event.count
            self.event_counts[event.reason] += new
            self.event_log.append((snapshot.at, event.reason, event.message))

    @property
    def scale_events(self) -> int:
        return sum(self.event_counts[reason] for reason in SCALE_REASONS)


class Monitor:
    """Reads the WebAppScaling `name`, its VMs and its events (blocking; call it from a thread)."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.name = name

    def poll(self, at: float | None = None) -> Snapshot:
        selector = f"{LABEL_SCALING}={self.name}"
        was: Any
        try:
            was = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        except client.ApiException as error:
            if error.status != 404:
                raise
            was = None
        listed: Any = self.custom.list_namespaced_custom_object(
            "kubevirt.io", "v1", self.namespace, "virtualmachines", label_selector=selector
        )
        vms = listed["items"]
        events = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.kind={KIND},involvedObject.name={self.name}"
        ).items
        serialize = self.api.sanitize_for_serialization
        raw_events = [serialize(e) for e in events]  # type: ignore[no-untyped-call]
        return observe(time.monotonic() if at is None else at, was, vms, raw_events)
