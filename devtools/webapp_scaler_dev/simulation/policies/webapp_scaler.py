"""Our engine with its default settings, exactly as the operator runs it: `decide` every scrape interval
on what an operator can read, its decision applied as the operator would (no second implementation)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from webapp_scaler import model, webappscaling
from webapp_scaler.engine import decide
from webapp_scaler_dev.simulation import fleet as sim_fleet
from webapp_scaler_dev.simulation import settings as sim_settings


class WebAppScaler:
    name = "webapp-scaler"

    def __init__(
        self, settings: sim_settings.SimulationSettings, spec: webappscaling.ScalingSpec | None = None
    ) -> None:
        base: dict[str, Any] = {
            "replicas": {"min": settings.min_replicas, "max": settings.max_replicas},
            "sessions": {"targetPerVM": settings.target_per_vm},
        }
        if settings.engine_spec:
            base = merged(base, json.loads(settings.engine_spec))
        self.spec = spec or webappscaling.ScalingSpec.from_spec(base)
        self.memory = model.EngineMemory()
        self.interval = float(self.spec.sessions.scrape_interval_seconds)
        self.next_at = -1e18
        self.desired = settings.min_replicas
        self.last: model.Decision | None = None

    def act(self, now: float, fleet: sim_fleet.SimulatedFleet) -> None:
        if now < self.next_at:
            return
        self.next_at = now + self.interval - 1e-6
        decision = decide.decide(now, self.spec, fleet.states(), self.memory)
        self.memory = decision.memory
        self.desired = decision.desired
        self.last = decision
        slot = fleet.by_name
        fleet.delete([slot[n] for n in decision.delete])
        fleet.drain(now, [slot[n] for n in decision.drain])
        fleet.return_to_service([slot[n] for n in decision.return_to_service])
        fleet.start(now, [slot[n] for n in decision.start])
        fleet.create(now, decision.create)
        fleet.create(now, decision.create_warm, warm=True)


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` laid over `base`, maps merged key by key (a what-if spec changes one field, not a section)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
