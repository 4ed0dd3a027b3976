"""Kubernetes HPA v2 driving a KubeVirt VirtualMachinePool, on a Pods metric with an AverageValue target
(the sessions per VM, served by a custom-metrics adapter from Prometheus).

Modelled from kubernetes pkg/controller/podautoscaler:
- every `--horizontal-pod-autoscaler-sync-period` (15 s) the controller reads the metric of every pod
  matching the selector; here a VM's virt-launcher pod. Pods of VMs still cloning have no VMI yet and
  are not listed; pods of booting VMs (and ready VMs Prometheus has not scraped yet) are *missing*;
- `calcPlainMetricReplicas` (replica_calculator.go), ported line by line below, in milli-units as the
  metrics API returns them: tolerance, missing pods as target on scale-down and 0 on scale-up, and no
  change when that would flip the direction;
- currentReplicas is the pool's `status.replicas`; the chain min/max → stabilization → rate policies →
  min/max is `engine.normalize` (the same code our engine uses, pinned to HPA by its unit tests);
- the metric is as old as Prometheus' last scrape (30 s interval, kube-prometheus' default);
- the VirtualMachinePool's default scale-in picks VMs at random (pool.go `sortVMsRandom`) and deletes
  them: their sessions are dropped.
"""

from __future__ import annotations

import math

import numpy as np

from webapp_scaler import model, webappscaling
from webapp_scaler.engine import limits, normalize
from webapp_scaler_dev.simulation import fleet as sim_fleet
from webapp_scaler_dev.simulation import settings as sim_settings

MILLI = 1000


def calc_plain_metric_replicas(
    metrics: list[float], *, missing: int, current: int, target: float, tolerance: float
) -> int | None:
    """HPA's replica count for a Pods metric with an AverageValue target; None if no pod has a metric."""
    if not metrics:
        return None
    target_milli = round(target * MILLI)
    values = [round(v * MILLI) for v in metrics]
    ratio = (sum(values) // len(values)) / target_milli
    if missing == 0:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return math.ceil(ratio * len(values))
    fill = target_milli if ratio < 1.0 else 0
    values = values + [fill] * missing
    new_ratio = (sum(values) // len(values)) / target_milli
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


class Hpa:
    name = "hpa"
    drains = False

    def __init__(self, settings: sim_settings.SimulationSettings) -> None:
        self.settings = settings
        self.replicas = webappscaling.ReplicasSpec(min=settings.min_replicas, max=settings.max_replicas)
        self.behavior = webappscaling.HPA_BEHAVIOR
        self.desired = settings.min_replicas
        self.recommendations: tuple[model.Recommendation, ...] = ()
        self.up_events: tuple[model.ScaleEvent, ...] = ()
        self.down_events: tuple[model.ScaleEvent, ...] = ()
        self.scraped: dict[int, float] = {}  # VM id -> last value Prometheus scraped
        self.next_scrape = -1e18
        self.next_sync = -1e18
        self.victims = np.random.default_rng([settings.seed, 0x9001])

    # Prometheus ------------------------------------------------------------------------------------------

    def scrape(self, now: float, fleet: sim_fleet.SimulatedFleet) -> None:
        if now < self.next_scrape:
            return
        self.next_scrape = now + self.settings.prometheus_scrape_seconds - 1e-6
        self.scraped = {int(fleet.ids[s]): float(fleet.sessions[s]) for s in self.metric_slots(fleet)}

    def metric_slots(self, fleet: sim_fleet.SimulatedFleet) -> list[int]:
        """The VMs whose agent Prometheus scrapes and whose pod the HPA reads."""
        return fleet.slots_in(sim_fleet.READY)

    def pool(self, fleet: sim_fleet.SimulatedFleet) -> list[int]:
        """The pool's VMs (status.replicas): every VM not being deleted."""
        return fleet.slots_in(sim_fleet.CLONING, sim_fleet.BOOTING, sim_fleet.READY)

    # HPA controller --------------------------------------------------------------------------------------

    def proposal(self, fleet: sim_fleet.SimulatedFleet, current: int) -> int | None:
        pods = fleet.slots_in(sim_fleet.BOOTING, sim_fleet.READY)
        metrics = [self.scraped[int(fleet.ids[s])] for s in pods if int(fleet.ids[s]) in self.scraped]
        return calc_plain_metric_replicas(
            metrics,
            missing=len(pods) - len(metrics),
            current=current,
            target=self.settings.target_per_vm,
            tolerance=self.behavior.tolerance,
        )

    def act(self, now: float, fleet: sim_fleet.SimulatedFleet) -> None:
        self.housekeeping(now, fleet)
        self.scrape(now, fleet)
        if now < self.next_sync:
            return
        self.next_sync = now + self.settings.hpa_sync_seconds - 1e-6
        pool = self.pool(fleet)
        current = len(pool)
        bounded = normalize.out_of_range(current, self.replicas)
        if bounded is not None:
            desired = bounded.replicas
        else:
            proposal = self.proposal(fleet, current)
            if proposal is None:  # FailedGetPodsMetric: no rescale
                return
            result = normalize.normalize(
                proposal,
                current,
                now=now,
                replicas=self.replicas,
                behavior=self.behavior,
                recommendations=self.recommendations,
                up_events=self.up_events,
                down_events=self.down_events,
            )
            self.recommendations = result.recommendations
            desired = result.replicas
        if desired != current:
            self.up_events, self.down_events = limits.record_scale_event(
                self.up_events, self.down_events, now=now, previous=current, new=desired, behavior=self.behavior
            )
        self.desired = desired
        self.reconcile_pool(now, fleet, pool, desired)

    # VirtualMachinePool controller -----------------------------------------------------------------------

    def reconcile_pool(self, now: float, fleet: sim_fleet.SimulatedFleet, pool: list[int], desired: int) -> None:
        if desired > len(pool):
            fleet.create(now, desired - len(pool))
        elif desired < len(pool):
            order = self.victims.permutation(len(pool))
            self.remove(now, fleet, [pool[i] for i in order[: len(pool) - desired]])

    def remove(self, now: float, fleet: sim_fleet.SimulatedFleet, slots: list[int]) -> None:
        fleet.delete(slots)

    def housekeeping(self, now: float, fleet: sim_fleet.SimulatedFleet) -> None:
        """Nothing to finish: a deleted VM is gone at once."""
