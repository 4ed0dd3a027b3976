"""Actions the operator took that its watch has not reflected yet.

The VM lists come from watch indexes, which trail the API by a few milliseconds to seconds. Without
this, a tick right after "create 2 VMs" could see none of them and create 2 more — ReplicaSet's
controller solves the same race with "expectations". Each entry expires once the index shows the
expected state, or after `ttl` seconds (then the cluster's word wins again).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from webapp_scaler import model


@dataclass
class Expectations:
    ttl: float = 30.0
    created: dict[str, float] = field(default_factory=dict)
    created_warm: dict[str, float] = field(default_factory=dict)  # stopped warm-pool VMs, not capacity
    deleted: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    draining: dict[str, float] = field(default_factory=dict)
    returned: dict[str, float] = field(default_factory=dict)

    def apply(self, states: Sequence[model.VMState], now: float) -> list[model.VMState]:
        """The observed states, corrected by what we know we did and the index has not shown yet."""
        self._expire(now)
        by_name = {s.name: s for s in states}
        out: list[model.VMState] = []
        for state in states:
            if state.name in self.deleted:
                continue
            self.created.pop(state.name, None)
            self.created_warm.pop(state.name, None)
            if state.name in self.started and state.phase == model.VMPhase.WARM:
                state = dataclasses.replace(state, phase=model.VMPhase.STARTING, started_at=self.started[state.name])
            else:
                self.started.pop(state.name, None)
            if state.name in self.draining and state.phase != model.VMPhase.DRAINING:
                state = dataclasses.replace(
                    state, phase=model.VMPhase.DRAINING, draining_since=self.draining[state.name]
                )
            else:
                self.draining.pop(state.name, None)
            if state.name in self.returned and state.phase == model.VMPhase.DRAINING:
                state = dataclasses.replace(state, phase=model.VMPhase.READY, draining_since=None)
            else:
                self.returned.pop(state.name, None)
            out.append(state)
        for name in set(self.deleted) - by_name.keys():
            del self.deleted[name]  # the index shows it gone
        for name, at in self.created.items():
            out.append(model.VMState(name=name, phase=model.VMPhase.CLONING, created_at=at))
        for name, at in self.created_warm.items():
            # a warm VM is stopped from its creation on: counting it as cloning capacity would make the
            # fleet look too large and get real VMs removed while the watch lags
            out.append(model.VMState(name=name, phase=model.VMPhase.WARM, created_at=at))
        return sorted(out, key=lambda s: s.name)

    def _expire(self, now: float) -> None:
        for table in (self.created, self.created_warm, self.deleted, self.started, self.draining, self.returned):
            for name in [n for n, at in table.items() if now - at > self.ttl]:
                del table[name]
