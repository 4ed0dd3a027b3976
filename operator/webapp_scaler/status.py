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
from webapp_scaler.load_balancers import Concern, RouteVerdict
from webapp_scaler.sources.base import Reading


@dataclass(frozen=True, slots=True)
class Condition:
    """`status` None is Kubernetes' "Unknown": the operator cannot tell yet (no VM to read sessions from,
    a golden image still importing) — neither a success nor a failure for kstatus or Argo CD."""

    type: ConditionType
    status: bool | None
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
    drain_refused: Mapping[str, str] | None = None,
    drain_concerns: Sequence[Concern] = (),
    route: RouteVerdict | None = None,
    create_refused: str | None = None,
) -> list[Condition]:
    """Ready, Scaling, MetricsAvailable, GoldenImageReady, Reconciling, Stalled, DrainReady, and RouteReady
    when the spec has a route. `golden` is None only for an invalid spec (there is no golden image to look
    at); `conflicts` names objects of another owner in our names; `drain_refused` the VMs whose agent
    refused the drain mode, `drain_concerns` what the load balancers do to a drain in this mode;
    `create_refused` why the apiserver refused this round's VM create (403, 422), None when it did not."""
    stalled = stalled_condition(
        spec_error=spec_error, golden=golden, conflicts=conflicts, create_refused=create_refused
    )
    reconciling = reconciling_condition(stalled=stalled, golden=golden, states=states, decision=decision)
    ready_vms = sum(1 for s in states if s.phase == model.VMPhase.READY)
    failed = [r for r in readings if r.sessions is None]
    if not readings:
        metrics = Condition(
            ConditionType.METRICS_AVAILABLE, None, Reason.NO_READY_VMS, "no ready VM to read sessions from"
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
            reconciling,
            stalled,
            Condition(ConditionType.DRAIN_READY, False, Reason.INVALID_SPEC, f"not checked: {invalid}"),
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
    importing = not golden.ready and golden.reason == Reason.GOLDEN_IMAGE_NOT_READY  # not ready *yet*
    golden_condition = Condition(
        ConditionType.GOLDEN_IMAGE_READY, None if importing else golden.ready, golden.reason, golden.message
    )
    if untrusted:
        first = min(untrusted)
        detail = f"; {len(untrusted)} VM address(es) not trusted, e.g. {first}: {untrusted[first]}"
        metrics = Condition(metrics.type, metrics.status, metrics.reason, metrics.message + detail)
    stopped = sorted(s.name for s in states if s.phase is model.VMPhase.STOPPED)
    if stopped:
        ready = Condition(ready.type, ready.status, ready.reason, ready.message + stopped_note(stopped))
    found = [ready, scaling, metrics, golden_condition, reconciling, stalled]
    if spec is not None:
        found.append(drain_condition(spec.scale_in.drain, drain_refused or {}, drain_concerns))
    if route is not None:
        found.append(Condition(ConditionType.ROUTE_READY, route.ready, route.reason, route.message))
    return found


def stopped_note(names: Sequence[str]) -> str:
    """Ready's word on VMs a person stopped: they are neither capacity nor the operator's to touch, so the
    reader learns why there are more VMs than replicas and what ends it."""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"; {len(names)} VM(s) stopped by hand and not counted: {shown} (spec.runStrategy Halted; left alone: "
        "set runStrategy Always to return it, or delete it)"
    )


# golden-image verdicts no round of the operator can get past: a person creates, repairs or grants
_STALLING_GOLDEN = (Reason.GOLDEN_IMAGE_NOT_FOUND, Reason.GOLDEN_IMAGE_FAILED, Reason.CLONE_NOT_AUTHORIZED)
# VM phases still on their way: a clone, a boot, a start (KubeVirt and CDI carry these on by themselves),
# and a drain or a failed VM, which the operator itself finishes or replaces — but not while paused
_ON_THEIR_WAY = (model.VMPhase.CLONING, model.VMPhase.BOOTING, model.VMPhase.STARTING)
_IN_FLIGHT = (*_ON_THEIR_WAY, model.VMPhase.DRAINING, model.VMPhase.FAILED)


def stalled_condition(
    *,
    spec_error: str | None,
    golden: GoldenImageVerdict | None,
    conflicts: Sequence[str],
    create_refused: str | None,
) -> Condition:
    """kstatus's Stalled: True when the operator cannot make progress without a person, so kstatus (Flux,
    kpt) reports Failed and Argo CD Degraded instead of waiting forever. The first blocker found is the
    one named: an unreadable spec, the golden image (missing, failed, not cloneable — still importing is
    progress, not a stall), a VM create the apiserver refused, an object of another owner in our names."""
    if spec_error is not None or golden is None:
        return Condition(ConditionType.STALLED, True, Reason.INVALID_SPEC, spec_error or "the spec could not be read")
    if golden.reason in _STALLING_GOLDEN:
        return Condition(ConditionType.STALLED, True, golden.reason, golden.message)
    if create_refused is not None:
        return Condition(ConditionType.STALLED, True, Reason.CREATE_FAILED, create_refused)
    if conflicts:
        return Condition(ConditionType.STALLED, True, Reason.NAME_CONFLICT, "; ".join(conflicts))
    return Condition(
        ConditionType.STALLED,
        False,
        Reason.NOT_STALLED,
        "nothing needs a person: the spec is valid, the golden image can be cloned, VMs may be created and "
        "the Service, Ingress and HTTPRoute names are this object's own",
    )


def reconciling_condition(
    *,
    stalled: Condition,
    golden: GoldenImageVerdict | None,
    states: Sequence[model.VMState],
    decision: model.Decision | None,
) -> Condition:
    """kstatus's Reconciling: True while the operator works towards the spec. The status is written in the
    round that read the spec, with that generation as observedGeneration — so "not yet observed" is never
    what this round reports (kstatus sees a newer metadata.generation by itself until the next status);
    what is left is the work in flight: the golden image importing, VMs cloning, booting, starting,
    draining or failed (to be replaced), the round's own actions, or fewer ready VMs than desired. Paused,
    the operator acts on nothing: a drain or a failed VM waits for the pause to end and is not progress.
    False while Stalled is True: kstatus reads Reconciling first, and a stalled object must read Failed."""
    if stalled.status:
        return Condition(ConditionType.RECONCILING, False, Reason.BLOCKED, f"blocked: {stalled.message}")
    if golden is None or not golden.ready or decision is None:
        message = golden.message if golden is not None else "the golden image is not checked yet"
        return Condition(
            ConditionType.RECONCILING, True, Reason.GOLDEN_IMAGE_NOT_READY, f"waiting for the golden image: {message}"
        )
    ready = sum(1 for s in states if s.phase == model.VMPhase.READY)
    moving = _ON_THEIR_WAY if decision.reason == Reason.PAUSED else _IN_FLIGHT
    in_flight = [p for p in moving if any(s.phase == p for s in states)]
    counts = ", ".join(f"{sum(1 for s in states if s.phase == p)} {str(p).lower()}" for p in in_flight)
    summary = f"{ready} of {decision.desired} VMs ready" + (f"; {counts}" if counts else "")
    if decision.acts or in_flight or ready != decision.desired:
        acted = f"; this round: {decision.message}" if decision.acts else ""
        return Condition(ConditionType.RECONCILING, True, Reason.VMS_CHANGING, summary + acted)
    if decision.reason == Reason.PAUSED:
        message = f"{summary}; paused: no VM is created, drained or deleted until spec.paused is false"
        return Condition(ConditionType.RECONCILING, False, Reason.VMS_SETTLED, message)
    return Condition(
        ConditionType.RECONCILING,
        False,
        Reason.VMS_SETTLED,
        f"{summary}, none cloning, booting, starting or draining: the fleet is as the spec and the sessions ask",
    )


def drain_condition(
    drain: webappscaling.DrainSpec, refused: Mapping[str, str], concerns: Sequence[Concern]
) -> Condition:
    """DrainReady: True when a drain in the spec's mode keeps the draining VMs' users, as far as the
    operator can tell. An agent that refused the mode comes first: nothing drains there at all."""
    if not drain.enabled:
        return Condition(
            ConditionType.DRAIN_READY,
            False,
            Reason.DRAIN_DISABLED,
            "spec.scaleIn.drain.enabled is false: a VM is deleted at once on scale-in, with its sessions",
        )
    if refused:
        first = min(refused)
        more = f" ({len(refused)} VMs refused)" if len(refused) > 1 else ""
        return Condition(ConditionType.DRAIN_READY, False, Reason.DRAIN_MODE_UNSUPPORTED, refused[first] + more)
    if concerns:
        return Condition(ConditionType.DRAIN_READY, False, concerns[0].reason, "; ".join(c.message for c in concerns))
    how = {
        "RefuseNewSessions": "draining VMs stay Ready and their agents answer requests without a session held "
        "there with 503, for the load balancer to retry on another VM",
        "Readiness": "draining VMs turn not ready; their users keep reaching them only through a load balancer "
        "that keeps routing cookie-pinned requests to not-ready endpoints",
    }[drain.mode]
    return Condition(ConditionType.DRAIN_READY, True, Reason.DRAIN_MODE_SUPPORTED, f"drain mode {drain.mode}: {how}")


def drain_mode(drain: webappscaling.DrainSpec) -> str:
    """status.drainMode (and the DRAIN column): the mode drains use, or Disabled."""
    return drain.mode if drain.enabled else "Disabled"


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
    drain_mode: str | None = None,
) -> dict[str, Any]:
    """The whole status. `scraped` says whether any agent answered this round: without it the current
    session count is unknown (null), not zero. `drain_mode` is None for a spec that could not be read."""
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
    if drain_mode is not None:
        status["drainMode"] = drain_mode
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
        status = "Unknown" if c.status is None else "True" if c.status else "False"
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
