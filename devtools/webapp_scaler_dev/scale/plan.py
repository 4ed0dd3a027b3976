"""What every WebAppScaling's agents report over time: pure, so the farm and the report agree on it.

Each object's sessions ramp up from 0 to `base` (its minimum fleet's worth) over `ramp_s` from
`ramp_from`, slowly enough that the engine's forecast follows them (a step from 0 to `base` would be a
flash crowd for every object at once, and the burst response would answer it). Once the steps start, object i rises to
`high` sessions for `hold_s` out of every `period_s`, its cycle shifted by i/N of a period, so the rises
are spread evenly over time and the operator always has a few scale-outs and scale-ins in flight. A
frozen plan keeps every object where it is (the restart measurement needs a still fleet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadPlan:
    objects: int
    base: int
    """Sessions of an object at rest: `vms` VMs' worth at the target (below it, so no scale-out)."""
    high: int
    """Sessions of an object during its rise."""
    period_s: float = 600.0
    hold_s: float = 240.0
    ramp_s: float = 300.0
    ramp_from: float | None = None
    """Wall-clock time the ramp to `base` starts; None: `base` from the start."""
    steps_from: float | None = None
    """Wall-clock time the rises start; None: every object stays at `base`."""
    frozen_at: float | None = None
    """Wall-clock time the plan stopped moving; None: it moves."""

    def __post_init__(self) -> None:
        if self.objects < 1 or self.base < 0 or self.high < self.base:
            raise ValueError("a plan needs objects ≥ 1 and 0 ≤ base ≤ high")
        if self.ramp_s <= 0:
            raise ValueError("ramp_s must be positive")
        if not 0 < self.hold_s < self.period_s:
            raise ValueError("hold_s must lie between 0 and period_s")

    def sessions(self, index: int, now: float) -> int:
        """Sessions object `index` (0-based) holds at wall-clock time `now`."""
        at = min(now, self.frozen_at) if self.frozen_at is not None else now
        if self.ramp_from is not None and at < self.ramp_from + self.ramp_s:
            return max(0, int(self.base * (at - self.ramp_from) / self.ramp_s))
        if self.steps_from is None:
            return self.base
        since = at - self.steps_from
        if since < 0:
            return self.base
        shift = self.period_s * (index % self.objects) / self.objects
        if since < shift:
            return self.base
        return self.high if (since - shift) % self.period_s < self.hold_s else self.base

    def rises(self, index: int, start: float, end: float) -> list[float]:
        """Wall-clock times in [start, end) at which object `index` rises to `high`."""
        if self.steps_from is None:
            return []
        last = min(end, self.frozen_at) if self.frozen_at is not None else end
        shift = self.period_s * (index % self.objects) / self.objects
        first = self.steps_from + shift
        k = max(0, math.ceil((start - first) / self.period_s))
        times = []
        while (t := first + k * self.period_s) < last:
            times.append(t)
            k += 1
        return times


def split(total: int, members: int, position: int) -> int:
    """Object sessions spread over its serving VMs as evenly as whole sessions allow (the load balancer's
    share): the first `total % members` VMs hold one more."""
    if members <= 0:
        return 0
    return total // members + (1 if position < total % members else 0)
