"""HPA's fixed chain from a metric proposal to the count to apply: min/max pre-check → stabilization
windows → rate policies → min/max (horizontal.go `reconcileAutoscaler` and
`normalizeDesiredReplicasWithBehaviors`). The `hpa` baseline of the simulator runs this same chain.
"""

from __future__ import annotations

import dataclasses

from webapp_scaler import model, webappscaling
from webapp_scaler.constants import Reason
from webapp_scaler.engine import limits, stabilize


@dataclasses.dataclass(frozen=True, slots=True)
class Normalized:
    replicas: int
    reason: Reason
    recommendations: tuple[model.Recommendation, ...]


def out_of_range(current: int, replicas: webappscaling.ReplicasSpec) -> Normalized | None:
    """HPA moves a target outside [min, max] straight to the bound, before looking at metrics."""
    if current > replicas.max:
        return Normalized(replicas.max, Reason.TOO_MANY_REPLICAS, ())
    if current < replicas.min:
        return Normalized(replicas.min, Reason.TOO_FEW_REPLICAS, ())
    return None


def normalize(
    proposal: int,
    current: int,
    *,
    now: float,
    replicas: webappscaling.ReplicasSpec,
    behavior: webappscaling.BehaviorSpec,
    recommendations: tuple[model.Recommendation, ...],
    up_events: tuple[model.ScaleEvent, ...],
    down_events: tuple[model.ScaleEvent, ...],
) -> Normalized:
    """The stabilized, rate-limited and clamped count, with the reason of the step that bound it."""
    bounded = out_of_range(current, replicas)
    if bounded is not None:
        return dataclasses.replace(bounded, recommendations=recommendations)
    stable = stabilize.stabilize(
        recommendations,
        now=now,
        desired=proposal,
        current=current,
        up_window_seconds=behavior.scale_up.stabilization_window_seconds,
        down_window_seconds=behavior.scale_down.stabilization_window_seconds,
    )
    limited = limits.limit_rate(
        stable.replicas,
        current,
        now=now,
        replicas=replicas,
        behavior=behavior,
        up_events=up_events,
        down_events=down_events,
    )
    if limited.replicas != stable.replicas:
        reason = limited.reason
    elif stable.replicas != proposal:
        reason = stable.reason
    else:
        reason = Reason.DESIRED_WITHIN_RANGE
    return Normalized(limited.replicas, reason, stable.recommendations)
