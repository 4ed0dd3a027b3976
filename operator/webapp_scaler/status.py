"""The WebAppScaling status: conditions in the shape kstatus, Argo CD and Flux read, and the numbers a
person reads in `kubectl get was` / `kubectl describe was`. Pure: built from the round's one list of VM
states (the same the engine decided on and the actions used) and its scrape results; the previous status
is only consulted to keep each condition's lastTransitionTime and the last scale time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webapp_scaler import model, naming, webappscaling
from webapp_scaler.constants import ConditionType, Reason
from webapp_scaler.engine.decide import ACTIVE
from webapp_scaler.fleet import format_time
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
    golden: GoldenImageVerdict | None,
    readings: Sequence[Reading],
    states: Sequence[model.VMState],
    decision: model.Decision | None,
    spec: webappscaling.ScalingSpec | None,
    spec_error: str | None,
    conflicts: Sequence[str] = (),
    untrusted: Mapping[str, str] | None = None,
) -> list[Condition]:
    """Ready, Scaling, MetricsAvailable, GoldenImageReady, Stalled. `golden` is None only for an invalid
    spec (there is no golden image to look at); `conflicts` names objects of another owner in our names."""
    if conflicts:
        stalled = Condition(ConditionType.STALLED, True, Reason.NAME_CONFLICT, "; ".join(conflicts))
    else:
        stalled = Condition(
            ConditionType.STALLED, False, Reason.NO_CONFLICT, "the Service and Ingress names are this object's own"
        )
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
            Reason.FAILED_GET_METRICS,
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

    if spec_error is not None or golden is None:
        invalid = spec_error or "the spec could not be read"
        return [
            Condition(ConditionType.READY, False, Reason.INVALID_SPEC, invalid),
            Condition(ConditionType.SCALING, False, Reason.INVALID_SPEC, invalid),
            metrics,
            Condition(ConditionType.GOLDEN_IMAGE_READY, False, Reason.INVALID_SPEC, f"not checked: {invalid}"),
            stalled,
        ]
    if decision is None:
        scaling = Condition(ConditionType.SCALING, False, golden.reason, "waiting for the golden image")
    else:
        scaling = Condition(ConditionType.SCALING, decision.acts, decision.reason, decision.message)

    desired = decision.desired if decision else 0
    if not golden.ready:
        ready = Condition(ConditionType.READY, False, golden.reason, golden.message)
    elif spec is not None and ready_vms >= max(spec.replicas.min, 1 if desired else 0) and ready_vms >= desired:
        ready = Condition(ConditionType.READY, True, Reason.ALL_READY, f"{ready_vms} of {desired} VMs ready")
    else:
        ready = Condition(ConditionType.READY, False, Reason.VMS_NOT_READY, f"{ready_vms} of {desired} VMs ready")
    golden_condition = Condition(ConditionType.GOLDEN_IMAGE_READY, golden.ready, golden.reason, golden.message)
    if untrusted:
        first = min(untrusted)
        detail = f"; {len(untrusted)} VM address(es) not trusted, e.g. {first}: {untrusted[first]}"
        metrics = Condition(metrics.type, metrics.status, metrics.reason, metrics.message + detail)
    return [ready, scaling, metrics, golden_condition, stalled]


def build_status(
    *,
    name: str,
    generation: int,
    states: Sequence[model.VMState],
    scraped: bool,
    decision: model.Decision | None,
    condition_list: Sequence[Condition],
    previous: Mapping[str, Any],
    now: float,
) -> dict[str, Any]:
    """The whole status. `scraped` says whether any agent was asked this round: without it the current
    session count is unknown (null), not zero."""
    phases = [s.phase for s in states]
    current = sum(s.sessions for s in states if s.sessions is not None) if scraped else None
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
                "sessions": None if s.sessions is None else round(s.sessions),
                "ip": s.ip,
                **({"drainingSince": format_time(s.draining_since)} if s.draining_since else {}),
            }
            for s in states
        ],
        "conditions": _with_transition_times(condition_list, previous.get("conditions") or [], now, generation),
    }
    if decision is not None and decision.desired != previous.get("desiredReplicas"):
        status["lastScaleTime"] = format_time(now, precise=False)
        status["lastScaleReason"] = decision.message
    else:
        for key in ("lastScaleTime", "lastScaleReason"):
            if key in previous:
                status[key] = previous[key]
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
