"""What a simulated policy is: something that looks at the fleet every step and may act on it."""

from __future__ import annotations

from typing import Protocol

from webapp_scaler_dev.simulation import fleet as sim_fleet


class Policy(Protocol):
    name: str
    desired: int  # the count the policy currently asks for; a change is a scale event

    def act(self, now: float, fleet: sim_fleet.SimulatedFleet) -> None:
        """Called at every simulation step; policies keep their own sync periods."""
        ...
