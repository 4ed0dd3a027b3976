"""How each VM's scraped session count becomes one demand sample.

The rules, per phase:

- Ready: its sessions count. A Ready VM whose agent could not be scraped (None) or sent garbage
  (negative, NaN, infinite) is *missing*, and is filled like HPA fills missing pods
  (replica_calculator.go): as exactly the target when the others point to a scale-down, as zero when
  they point to a scale-up. If the filled sample would flip the direction the reporting VMs point to,
  the sample is recorded as neutral (the active VMs exactly at target). Missing data never moves the fleet.
- Draining: its valid sessions count in the sample, which is the load of the whole fleet: draining a
  VM moves no user, so it must not look like a drop in load to the average or the trend. The decision
  then takes the sessions on draining VMs out of what the active VMs must carry (`decide.active_demand`):
  those users stay on their VM until they leave and new users never join them. A draining VM that cannot
  be scraped counts zero: its users are leaving, and it needs no capacity from the others.
- Cloning, Booting, Starting: no agent runs and the load balancer sends them nobody, so zero, not missing.
- Warm, Failed: not part of the serving fleet.

When Ready VMs exist but none of them could be scraped there is no sample: the engine then holds the
count, as HPA does on `FailedGetPodsMetric`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from webapp_scaler import model


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    sessions: float | None  # the demand sample, None when nothing could be measured
    missing: int  # Ready VMs without a usable count
    draining_sessions: float


def valid_sessions(value: float | None) -> float | None:
    """A usable session count, or None for a missing or garbage one (negative, NaN, inf, non-number)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def observe(vms: Sequence[model.VMState], *, target_per_vm: float, current: int) -> Observation:
    ready_sum = 0.0
    draining_sum = 0.0
    ready = 0
    reporting = 0
    for vm in vms:
        if vm.phase is model.VMPhase.READY:
            ready += 1
            value = valid_sessions(vm.sessions)
            if value is not None:
                ready_sum += value
                reporting += 1
        elif vm.phase is model.VMPhase.DRAINING:
            value = valid_sessions(vm.sessions)
            if value is not None:
                draining_sum += value
    missing = ready - reporting
    reported = ready_sum + draining_sum
    if missing == 0:
        return Observation(reported, 0, draining_sum)
    if reporting == 0:
        return Observation(None, missing, draining_sum)
    # The direction the reporting VMs point to, per reporting VM as HPA computes it.
    scale_down = ready_sum / (reporting * target_per_vm) < 1.0
    filled = reported + (missing * target_per_vm if scale_down else 0.0)
    neutral = current * target_per_vm + draining_sum
    if (scale_down and filled > neutral) or (not scale_down and filled < neutral):
        filled = neutral
    return Observation(filled, missing, draining_sum)
