"""HPA's rate policies and min/max (horizontal.go `convertDesiredReplicasWithBehaviorRate`,
`calculateScaleUpLimitWithScalingRules`, `calculateScaleDownLimitWithBehaviors`).

A policy limits the change relative to the count at the start of its period, reconstructed from the
scale events of that period; selectPolicy Max takes the policy allowing the biggest change, Min the
smallest, Disabled forbids the direction.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from webapp_scaler import model, webappscaling
from webapp_scaler.constants import Reason


@dataclasses.dataclass(frozen=True, slots=True)
class Limited:
    replicas: int
    reason: Reason


def change_in_period(events: Sequence[model.ScaleEvent], now: float, period_seconds: int) -> int:
    """Replicas added (or removed) by the events strictly after now - period (HPA's `After(cutoff)`)."""
    cutoff = now - period_seconds
    return sum(e.change for e in events if e.at > cutoff)


def scale_up_limit(
    current: int,
    rules: webappscaling.ScalingRules,
    *,
    now: float,
    up_events: Sequence[model.ScaleEvent],
    down_events: Sequence[model.ScaleEvent],
) -> int:
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = (
            current
            - change_in_period(up_events, now, policy.period_seconds)
            + change_in_period(down_events, now, policy.period_seconds)
        )
        if policy.type == "VMs":
            proposals.append(start + policy.value)
        else:  # rounded up, or a small fleet could never grow by a percentage
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
    return min(proposals) if rules.select_policy == "Min" else max(proposals)


def scale_down_limit(
    current: int,
    rules: webappscaling.ScalingRules,
    *,
    now: float,
    up_events: Sequence[model.ScaleEvent],
    down_events: Sequence[model.ScaleEvent],
) -> int:
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = (
            current
            - change_in_period(up_events, now, policy.period_seconds)
            + change_in_period(down_events, now, policy.period_seconds)
        )
        if policy.type == "VMs":
            proposals.append(start - policy.value)
        else:  # truncated toward zero, as Go's int32(float64) conversion does
            proposals.append(int(start * (1 - policy.value / 100)))
    # For scale-down the "smallest change" (Min) is the highest count.
    return max(proposals) if rules.select_policy == "Min" else min(proposals)


def limit_rate(
    desired: int,
    current: int,
    *,
    now: float,
    replicas: webappscaling.ReplicasSpec,
    behavior: webappscaling.BehaviorSpec,
    up_events: Sequence[model.ScaleEvent],
    down_events: Sequence[model.ScaleEvent],
) -> Limited:
    """Bound the stabilized recommendation by the rate policies and by min/max, naming the binding limit."""
    if desired > current:
        up_limit = max(
            current,
            scale_up_limit(current, behavior.scale_up, now=now, up_events=up_events, down_events=down_events),
        )
        if replicas.max > up_limit:
            allowed, reason = up_limit, Reason.SCALE_UP_LIMIT
        else:
            allowed, reason = replicas.max, Reason.TOO_MANY_REPLICAS
        if desired > allowed:
            return Limited(allowed, reason)
    elif desired < current:
        down_limit = min(
            current,
            scale_down_limit(current, behavior.scale_down, now=now, up_events=up_events, down_events=down_events),
        )
        if replicas.min < down_limit:
            allowed, reason = down_limit, Reason.SCALE_DOWN_LIMIT
        else:
            allowed, reason = replicas.min, Reason.TOO_FEW_REPLICAS
        if desired < allowed:
            return Limited(allowed, reason)
    return Limited(desired, Reason.DESIRED_WITHIN_RANGE)


def record_scale_event(
    up_events: Sequence[model.ScaleEvent],
    down_events: Sequence[model.ScaleEvent],
    *,
    now: float,
    previous: int,
    new: int,
    behavior: webappscaling.BehaviorSpec,
) -> tuple[tuple[model.ScaleEvent, ...], tuple[model.ScaleEvent, ...]]:
    """Remember a rescale for the rate policies, forgetting events older than the longest period."""
    longest = max((p.period_seconds for p in (*behavior.scale_up.policies, *behavior.scale_down.policies)), default=0)
    cutoff = now - longest
    up = tuple(e for e in up_events if e.at > cutoff)
    down = tuple(e for e in down_events if e.at > cutoff)
    if new > previous:
        up = (*up, model.ScaleEvent(now, new - previous))
    elif new < previous:
        down = (*down, model.ScaleEvent(now, previous - new))
    return up, down
