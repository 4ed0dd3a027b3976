"""KEDA with a Prometheus trigger on `sum(webapp_active_sessions)`, metricType AverageValue (KEDA's
default), driving the same VirtualMachinePool.

KEDA creates an HPA with an External metric; the HPA computes it with
`GetExternalPerPodMetricReplicas` (replica_calculator.go): usage = the sum, ratio = usage /
(target × status.replicas), and outside the tolerance `ceil(usage / target)`. Booting VMs count in
status.replicas but add nothing to the sum. The rest of the HPA chain is the same as `hpa`, and so is
the pool's random, session-blind scale-in.

KEDA's own loop polls the trigger every `pollingInterval` (30 s) for activation and scales to
`minReplicaCount` only after `cooldownPeriod` (300 s) without activity (keda `scale_handler.go`,
`executor/scale_scaledobjects.go`). Those two only govern scaling between zero and one: KEDA's default
minReplicaCount is 0, but a session count exported by the VMs themselves can never wake a pool at zero
(no VM, no metric), so the baseline uses minReplicaCount = the shared minimum (1) and the activation
loop below is kept for completeness: with a minimum of one it never fires.
"""

from __future__ import annotations

import math

from webapp_scaler_dev.simulation import fleet as sim_fleet
from webapp_scaler_dev.simulation import settings as sim_settings
from webapp_scaler_dev.simulation.policies import hpa

MILLI = hpa.MILLI


def external_per_pod_replicas(total: float, *, status_replicas: int, target: float, tolerance: float) -> int:
    usage = round(total * MILLI)
    target_milli = round(target * MILLI)
    if status_replicas <= 0:
        return math.ceil(usage / target_milli)
    ratio = usage / (target_milli * status_replicas)
    if abs(1.0 - ratio) > tolerance:
        return math.ceil(usage / target_milli)
    return status_replicas


class Keda(hpa.Hpa):
    name = "keda"

    def __init__(self, settings: sim_settings.SimulationSettings) -> None:
        super().__init__(settings)
        self.next_poll = -1e18
        self.last_active = -1e18

    def proposal(self, fleet: sim_fleet.SimulatedFleet, current: int) -> int | None:
        return external_per_pod_replicas(
            sum(self.scraped.values()),
            status_replicas=current,
            target=self.settings.target_per_vm,
            tolerance=self.behavior.tolerance,
        )

    def act(self, now: float, fleet: sim_fleet.SimulatedFleet) -> None:
        self.scrape(now, fleet)
        if now >= self.next_poll:
            self.next_poll = now + self.settings.keda_polling_seconds - 1e-6
            if sum(self.scraped.values()) > 0:  # activationThreshold 0
                self.last_active = now
            pool = self.pool(fleet)
            min_count = self.settings.min_replicas
            idle = now - self.last_active >= self.settings.keda_cooldown_seconds
            if min_count == 0 and idle and pool:
                self.desired = 0
                self.reconcile_pool(now, fleet, pool, 0)
                return
            if not pool and not idle:
                self.desired = 1
                self.reconcile_pool(now, fleet, pool, 1)
        if not self.pool(fleet) and self.settings.min_replicas == 0:
            return  # the HPA is disabled while the target is at zero
        super().act(now, fleet)
