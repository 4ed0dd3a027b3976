"""HPA as in `hpa`, but each VM the pool removes is drained before it goes: the best HPA plus a drain
hook can do today (e.g. a long termination grace period whose shutdown hook waits for the sessions).

The removed VM leaves the pool's count at once (it is terminating, so the pool creates replacements if
HPA asks for more) and its pod is terminating, so the HPA ignores its metric (replica_calculator.go
`groupPods` skips pods with a deletion timestamp). It stops receiving new sessions and is deleted when
its sessions reach zero or the drain timeout (the same as ours) expires. Victims are still random: the
pool knows nothing about sessions. Not-yet-ready victims hold no session and go at once.
"""

from __future__ import annotations

from webapp_scaler_dev.simulation import fleet as sim_fleet
from webapp_scaler_dev.simulation.policies import hpa


class HpaDrain(hpa.Hpa):
    name = "hpa-drain"

    def remove(self, now: float, fleet: sim_fleet.SimulatedFleet, slots: list[int]) -> None:
        fleet.delete([s for s in slots if fleet.phase[s] != sim_fleet.READY])
        fleet.drain(now, [s for s in slots if fleet.phase[s] == sim_fleet.READY])

    def housekeeping(self, now: float, fleet: sim_fleet.SimulatedFleet) -> None:
        timeout = self.settings.drain_timeout_seconds
        done = [
            s
            for s in fleet.slots_in(sim_fleet.DRAINING)
            if fleet.sessions[s] == 0 or now - fleet.draining_since[s] >= timeout
        ]
        fleet.delete(done)
