"""How each VM's scraped session count becomes one demand sample.

The rules, per phase:

- Ready: its sessions count. A Ready VM whose agent could not be scraped (None) or sent garbage
  (negative, NaN, infinite, above `MAX_SESSIONS_PER_VM`) is *missing*, and missing data never scales in:
  while any Ready VM is missing there is no sample (the engine holds the count, as HPA does on
  `FailedGetPodsMetric`) unless the fleet must grow even if every missing VM held no session at all — the
  reporting VMs alone are over the active VMs' target — which is HPA's fill for a scale-up
  (replica_calculator.go: missing pods count zero when the others point to a scale-up). HPA's fill for a
  scale-down (missing pods exactly at target) is not used: one broken agent scaled in a fleet that way.
- Draining: its valid sessions count in the sample, which is the load of the whole fleet: draining a
  VM moves no user, so it must not look like a drop in load to the average or the trend. The decision
  then takes the sessions on draining VMs out of what the active VMs must carry (`decide.active_demand`):
  those users stay on their VM until they leave and new users never join them. A draining VM that cannot
  be scraped counts zero: its users are leaving, and it needs no capacity from the others.
- Cloning, Booting, Starting: no agent runs and the load balancer sends them nobody, so zero, not missing.
- Warm, Failed: not part of the serving fleet.

When Ready VMs exist but none of them could be scraped the round *fails*. Failed rounds in a row are
counted (`Observation.failed_rounds`, to be passed back as `failed_rounds` next round); with
`spec.sessions.fallback.replicas` set, once more than `failureThreshold` rounds in a row failed the sample
is the fallback's — `replicas` VMs exactly at target — as KEDA's fallback feeds HPA `target × replicas`
(kedacore/keda `pkg/fallback/fallback.go`, `doFallback`, applied when `NumberOfFailures > FailureThreshold`).
Without it the count is held for as long as the failure lasts. Pure: the same arguments, the same result.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from webapp_scaler import model, webappscaling

# No web application VM holds a million sessions: a count above this is a broken or hostile agent, not
# load. The bound keeps a fleet's sum far from float overflow and inside the status's int64 fields; the
# scrape (`sources.prometheus_text`) refuses such a value with a message, this module never counts it.
MAX_SESSIONS_PER_VM = 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    sessions: float | None  # the demand sample, None when nothing (or nothing safe) could be measured
    missing: int  # Ready VMs without a usable count
    draining_sessions: float
    failed_rounds: int = 0  # rounds in a row, this one included, in which no Ready VM had a usable count
    fallback: bool = False  # `sessions` is the fallback's (spec.sessions.fallback.replicas), not measured


def valid_sessions(value: float | None) -> float | None:
    """A usable session count, or None for a missing or garbage one (negative, NaN, inf, above
    MAX_SESSIONS_PER_VM, non-number)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_SESSIONS_PER_VM:
        return None
    return float(value)


def observe(
    vms: Sequence[model.VMState],
    *,
    target_per_vm: float,
    current: int,
    fallback: webappscaling.FallbackSpec | None = None,
    failed_rounds: int = 0,
) -> Observation:
    """The round's sample. `failed_rounds`: the previous round's `Observation.failed_rounds`."""
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
        failed = failed_rounds + 1
        if fallback is not None and fallback.replicas is not None and failed > fallback.failure_threshold:
            return Observation(fallback.replicas * target_per_vm + draining_sum, missing, draining_sum, failed, True)
        return Observation(None, missing, draining_sum, failed)
    # Some Ready VMs reported. Counting every missing one as empty, is the fleet still over target?
    # Then it must grow whatever the missing VMs hold; else hold: a missing VM may be full.
    neutral = current * target_per_vm + draining_sum
    if reported > neutral:
        return Observation(reported, missing, draining_sum)
    return Observation(None, missing, draining_sum)
