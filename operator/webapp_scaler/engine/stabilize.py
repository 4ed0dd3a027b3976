"""HPA's stabilization windows (horizontal.go `stabilizeRecommendationWithBehaviors`).

Scale-up may go no higher than the lowest recommendation of its window, scale-down no lower than the
highest of its window. Recommendations are recorded unstabilized, as HPA does, so a window reflects what
the metrics asked for, not what was allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from webapp_scaler import model
from webapp_scaler.constants import Reason


@dataclasses.dataclass(frozen=True, slots=True)
class Stabilized:
    replicas: int
    reason: Reason  # ScaleUpStabilized or ScaleDownStabilized, meaningful only if replicas moved
    recommendations: tuple[model.Recommendation, ...]


def stabilize(
    recommendations: Sequence[model.Recommendation],
    *,
    now: float,
    desired: int,
    current: int,
    up_window_seconds: int,
    down_window_seconds: int,
) -> Stabilized:
    up_cutoff = now - up_window_seconds
    down_cutoff = now - down_window_seconds
    up = desired
    down = desired
    for rec in recommendations:
        # HPA keeps a record when it is strictly after the cutoff (`timestamp.After(cutoff)`).
        if rec.at > up_cutoff:
            up = min(up, rec.replicas)
        if rec.at > down_cutoff:
            down = max(down, rec.replicas)
    replicas = min(max(current, up), down)
    reason = Reason.SCALE_UP_STABILIZED if desired >= current else Reason.SCALE_DOWN_STABILIZED
    oldest_useful = min(up_cutoff, down_cutoff)
    kept = tuple(r for r in recommendations if r.at > oldest_useful)
    return Stabilized(replicas, reason, (*kept, model.Recommendation(now, desired)))
