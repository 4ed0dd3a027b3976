"""The WebAppScaling status: conditions in the shape kstatus, Argo CD and Flux read, and the numbers a
person reads in `kubectl get was` / `kubectl describe was`. Pure: built from what the tick observed and
decided; the previous status is only consulted to keep each condition's lastTransitionTime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webapp_scaler import model, naming
from webapp_scaler.constants import ConditionType, Reason
from webapp_scaler.engine.decide import ACTIVE
from webapp_scaler.fleet import Fleet, format_time
from webapp_scaler.golden_image import GoldenImageVerdict
from webapp_scaler.sources.base import Reading


@dataclass(frozen=True, slots=True)
class Condition:
    type: ConditionType
    status: bool
    reason: str
    message: str


def conditions(
    *,
    golden: GoldenImageVerdict,
    readings: Sequence[Reading],
    states: Sequence[model.VMState],
    decision: model.Decision | None,
    spec: model.ScalingSpec | None,
    spec_error: str | None,
) -> list[Condition]:
    ready_vms = sum(1 for s in states if s.phase == model.VMPhase.READY)
    failed = [r for r in readings if r.sessions is None]
    if not readings:
        metrics = Condition(
            ConditionType.METRICS_AVAILABLE, False, Reason.NO_READY_VMS, "no ready VM to read sessions from"
        )
    elif len(failed) == len(readings):
        metrics = Condition(
            ConditionType.METRICS_AVAILABLE,
            False,
            Reason.METRICS_MISSING,
            f"no agent answered ({len(failed)} of {len(readings)} failed): {failed[0].vm}: {failed[0].error}",
        )
    else:
        detail = f"; {len(failed)} failed, e.g. {failed[0].vm}: {failed[0].error}" if failed else ""
        metrics = Condition(
            ConditionType.METRICS_AVAILABLE,
            True,
            Reason.METRICS_OK,
            f"{len(readings) - len(failed)} of {len(readings)} agents answered{detail}",
        )

    if spec_error is not None:
        scaling = Condition(ConditionType.SCALING, False, "InvalidSpec", spec_error)
    elif decision is None:
        scaling = Condition(ConditionType.SCALING, False, golden.reason, "waiting for the golden image")
    else:
        scaling = Condition(ConditionType.SCALING, decision.acts, decision.reason, decision.message)

    desired = decision.desired if decision else 0
    if spec_error is not None:
        ready = Condition(ConditionType.READY, False, "InvalidSpec", spec_error)
    elif not golden.ready:
        ready = Condition(ConditionType.READY, False, golden.reason, golden.message)
    elif spec is not None and ready_vms >= max(spec.replicas.min, 1 if desired else 0) and ready_vms >= desired:
        ready = Condition(ConditionType.READY, True, Reason.ALL_READY, f"{ready_vms} of {desired} VMs ready")
    else:
        ready = Condition(ConditionType.READY, False, Reason.VMS_NOT_READY, f"{ready_vms} of {desired} VMs ready")
    golden_condition = Condition(ConditionType.GOLDEN_IMAGE_READY, golden.ready, golden.reason, golden.message)
    return [ready, scaling, metrics, golden_condition]


def build_status(
    *,
    name: str,
    generation: int,
    fleet: Fleet,
    states: Sequence[model.VMState],
    readings: Sequence[Reading],
    decision: model.Decision | None,
    condition_list: Sequence[Condition],
    previous: Mapping[str, Any],
    now: float,
) -> dict[str, Any]:
    phases = [s.phase for s in states]
    sessions = {r.vm: r.sessions for r in readings}
    ips = {vm.name: (fleet.vmis[vm.name].ip if vm.name in fleet.vmis else None) for vm in fleet.vms}
    current = sum(v for v in sessions.values() if v is not None) if readings else None
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "replicas": sum(1 for p in phases if p in ACTIVE),
        "readyReplicas": phases.count(model.VMPhase.READY),
        "desiredReplicas": decision.desired if decision else 0,
        "drainingReplicas": phases.count(model.VMPhase.DRAINING),
        "warmReplicas": phases.count(model.VMPhase.WARM),
        "selector": naming.selector(name),
        "sessions": {
            "current": None if current is None else round(current),
            "average": _decimal(decision.average_sessions if decision else None),
            "forecast": _decimal(decision.forecast_sessions if decision else None),
        },
        "vms": [
            {
                "name": s.name,
                "phase": str(s.phase),
                "sessions": None if sessions.get(s.name) is None else round(sessions[s.name] or 0),
                "ip": ips.get(s.name),
                **({"drainingSince": format_time(s.draining_since)} if s.draining_since else {}),
            }
            for s in states
        ],
        "conditions": _with_transition_times(condition_list, previous.get("conditions") or [], now, generation),
    }
    return status


def _decimal(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}"


def _with_transition_times(
    new: Sequence[Condition], old: Sequence[Mapping[str, Any]], now: float, generation: int
) -> list[dict[str, Any]]:
    before = {c.get("type"): c for c in old}
    out = []
    for c in new:
        status = "True" if c.status else "False"
        prior = before.get(str(c.type))
        since = prior.get("lastTransitionTime") if prior and prior.get("status") == status else None
        out.append(
            {
                "type": str(c.type),
                "status": status,
                "reason": str(c.reason),
                "message": c.message[:1000],
                "lastTransitionTime": since or format_time(now),
                "observedGeneration": generation,
            }
        )
    return out
