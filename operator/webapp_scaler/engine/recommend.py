"""Sessions → VMs, with HPA's tolerance band.

This is HPA's AverageValue rule (replica_calculator.go): the usage ratio is the demand over
`current * target`; inside `1 ± tolerance` nothing changes, outside it the answer is
`ceil(demand / target)`.
"""

from __future__ import annotations

import math

# ceil(240.0000001 / 80) must be 3, not 4: session sums of floats carry rounding noise.
_EPSILON = 1e-9


def replicas_for(demand: float, target_per_vm: float) -> int:
    """The VMs needed so that each carries at most `target_per_vm` sessions."""
    return max(0, math.ceil(demand / target_per_vm - _EPSILON))


def usage_ratio(demand: float, current: int, target_per_vm: float) -> float:
    if current <= 0:
        return math.inf if demand > 0 else 1.0
    return demand / (current * target_per_vm)


def recommend_replicas(demand: float, current: int, target_per_vm: float, tolerance: float) -> int:
    """HPA's proposal: keep `current` while the ratio is within the tolerance, else size for the demand."""
    if current > 0 and abs(1.0 - usage_ratio(demand, current, target_per_vm)) <= tolerance:
        return current
    return replicas_for(demand, target_per_vm)
