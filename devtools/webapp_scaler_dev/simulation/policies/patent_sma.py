"""The plain method: a simple moving average of the sessions against two thresholds, no stabilization,
no prediction, no drain.

Every scrape interval (15 s) the monitoring subsystem sums the agents' session counts; the scaler
averages the sums of the last `sma_window_seconds` and divides by the provisioned VMs (booting ones
included, so it does not order the same VM twice). Above the target per VM it orders enough clones to
bring the average back to the target; below `sma_lower_share × target` it removes one VM — a random one,
as the provisioning subsystem knows nothing about sessions — dropping its sessions.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from webapp_scaler_dev.simulation import fleet as sim_fleet
from webapp_scaler_dev.simulation import settings as sim_settings


class PatentSma:
    name = "patent-sma"
    interval = 15.0

    def __init__(self, settings: sim_settings.SimulationSettings) -> None:
        self.settings = settings
        self.desired = settings.min_replicas
        self.samples: collections.deque[tuple[float, float]] = collections.deque()
        self.next_at = -1e18
        self.victims = np.random.default_rng([settings.seed, 0x5A4])

    def act(self, now: float, fleet: sim_fleet.SimulatedFleet) -> None:
        if now < self.next_at:
            return
        self.next_at = now + self.interval - 1e-6
        self.samples.append((now, float(fleet.sessions[fleet.serving()].sum())))
        while self.samples[0][0] <= now - self.settings.sma_window_seconds:
            self.samples.popleft()
        average = sum(v for _, v in self.samples) / len(self.samples)
        pool = fleet.slots_in(sim_fleet.CLONING, sim_fleet.BOOTING, sim_fleet.READY)
        n = len(pool)
        target = self.settings.target_per_vm
        desired = n
        if n == 0 or average / n > target:
            desired = math.ceil(average / target)
        elif average / n < self.settings.sma_lower_share * target:
            desired = n - 1
        desired = min(max(desired, self.settings.min_replicas), self.settings.max_replicas)
        self.desired = desired
        if desired > n:
            fleet.create(now, desired - n)
        elif desired < n:
            fleet.delete([pool[int(self.victims.integers(n))]])
