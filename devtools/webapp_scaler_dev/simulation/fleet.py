"""The simulated fleet: VMs that clone, boot, serve, drain and go, and the load balancer in front.

- A new VM clones its disk (`clone_share` of the boot time) then boots (the rest); each part gets a
  seeded ±`jitter` spread. A warm-pool VM clones and then stays stopped; starting it costs only the boot
  part (after its clone, if that is still running).
- The load balancer gives each new session to the Ready, non-draining VM with the fewest sessions
  (least-connections); existing sessions stay where they are (sticky cookie). A draining VM keeps its
  sessions until they end. When no VM is ready, new users wait at the load balancer: they count as
  overload and are placed on the first VM that becomes ready.
- Deleting a VM that still holds sessions drops them: those users lose their session. Each of them
  comes back once, as a new session (`returns_due`, placed by the run at the next step); a user who
  already came back and is dropped again gives up. The fleet remembers which live sessions are such
  returns, per VM, by their end step.

Session ends are kept in a calendar (step × VM) so that a whole simulation step is a handful of array
operations, whatever the number of sessions.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from webapp_scaler import model

FREE, CLONING, BOOTING, READY, DRAINING, WARM, STARTING = range(7)
_MODEL_PHASE = {
    CLONING: model.VMPhase.CLONING,
    BOOTING: model.VMPhase.BOOTING,
    READY: model.VMPhase.READY,
    DRAINING: model.VMPhase.DRAINING,
    WARM: model.VMPhase.WARM,
    STARTING: model.VMPhase.STARTING,
}
RUNNING = (CLONING, BOOTING, READY, DRAINING, STARTING)  # what costs VM-minutes (warm VMs are stopped)


@dataclasses.dataclass(frozen=True)
class FleetParams:
    capacity: int = 100
    boot_seconds: float = 90.0  # clone + boot of a new VM
    clone_share: float = 0.5  # the part of boot_seconds spent cloning the disk
    jitter: float = 0.2


class SimulatedFleet:
    def __init__(
        self, params: FleetParams, *, steps: int, step_seconds: float, max_lifetime_steps: int, seed: int, slots: int
    ) -> None:
        self.params = params
        self.dt = step_seconds
        self.slots = slots
        self.phase = np.zeros(slots, dtype=np.int8)
        self.sessions = np.zeros(slots, dtype=np.int64)
        self.created_at = np.zeros(slots)
        self.clone_done_at = np.zeros(slots)
        self.ready_at = np.full(slots, math.nan)
        self.started_at = np.full(slots, math.nan)
        self.draining_since = np.full(slots, math.nan)
        self.ids = np.zeros(slots, dtype=np.int64)
        self.horizon = max_lifetime_steps + 1
        # calendar[t, v]: sessions on VM v that end at step t; the last column holds waiting users.
        self.calendar = np.zeros((steps + self.horizon + 1, slots + 1), dtype=np.int32)
        self.waiting = 0
        self.dropped = 0
        self.step = 0
        self.rng = np.random.default_rng([seed, 0xF1EE7])
        self._free = list(range(slots - 1, -1, -1))
        self._pending: set[int] = set()  # slots with a scheduled transition
        self._serving: npt.NDArray[np.int64] | None = np.zeros(0, dtype=np.int64)
        self._next_id = 0
        self.by_name: dict[str, int] = {}
        self.returns_due = 0  # dropped users who will come back once, as new sessions
        self._returned: dict[int, list[int]] = {}  # slot -> end steps of its sessions that are returns

    # -- what policies may read ----------------------------------------------------------------------

    def name(self, slot: int) -> str:
        return f"vm-{self.ids[slot]}"

    def slots_in(self, *phases: int) -> list[int]:
        return np.flatnonzero(_lookup(phases)[self.phase]).tolist()

    def count(self, *phases: int) -> int:
        return int(_lookup(phases)[self.phase].sum())

    def serving(self) -> npt.NDArray[np.int64]:
        if self._serving is None:
            self._serving = np.flatnonzero(self.phase == READY)
        return self._serving

    def states(self) -> list[model.VMState]:
        """Every VM as the operator would read it; a session count only where an agent answers."""
        out = []
        for slot in np.flatnonzero(self.phase != FREE).tolist():
            phase = int(self.phase[slot])
            ready = self.ready_at[slot]
            started = self.started_at[slot]
            drain = self.draining_since[slot]
            out.append(
                model.VMState(
                    name=self.name(slot),
                    phase=_MODEL_PHASE[phase],
                    created_at=float(self.created_at[slot]),
                    ready_at=None if phase not in (READY, DRAINING) else float(ready),
                    started_at=None if math.isnan(started) else float(started),
                    draining_since=None if math.isnan(drain) else float(drain),
                    sessions=float(self.sessions[slot]) if phase in (READY, DRAINING) else None,
                )
            )
        return out

    # -- actions -----------------------------------------------------------------------------------------

    def _jittered(self, seconds: float) -> float:
        j = self.params.jitter
        return seconds * float(self.rng.uniform(1 - j, 1 + j))

    def _allocate(self, now: float) -> int:
        if not self._free:
            raise RuntimeError(f"the simulated fleet ran out of its {self.slots} VM slots")
        slot = self._free.pop()
        self.ids[slot] = self._next_id
        self.by_name[f"vm-{self._next_id}"] = slot
        self._next_id += 1
        self.created_at[slot] = now
        self.clone_done_at[slot] = now + self._jittered(self.params.boot_seconds * self.params.clone_share)
        self.ready_at[slot] = math.nan
        self.started_at[slot] = math.nan
        self.draining_since[slot] = math.nan
        self._pending.add(slot)
        return slot

    def create(self, now: float, count: int, *, warm: bool = False) -> None:
        for _ in range(count):
            slot = self._allocate(now)
            self.phase[slot] = WARM if warm else CLONING
            if not warm:
                boot = self.params.boot_seconds * (1 - self.params.clone_share)
                self.ready_at[slot] = self.clone_done_at[slot] + self._jittered(boot)

    def start(self, now: float, slots: list[int]) -> None:
        for slot in slots:
            if self.phase[slot] != WARM:
                continue
            self.phase[slot] = STARTING
            self.started_at[slot] = now
            boot = self.params.boot_seconds * (1 - self.params.clone_share)
            self.ready_at[slot] = max(now, self.clone_done_at[slot]) + self._jittered(boot)
            self._pending.add(slot)

    def drain(self, now: float, slots: list[int]) -> None:
        for slot in slots:
            if self.phase[slot] == READY:
                self.phase[slot] = DRAINING
                self.draining_since[slot] = now
                self._serving = None

    def return_to_service(self, slots: list[int]) -> None:
        for slot in slots:
            if self.phase[slot] == DRAINING:
                self.phase[slot] = READY
                self.draining_since[slot] = math.nan
                self._serving = None

    def delete(self, slots: list[int]) -> None:
        """Remove VMs now; their sessions are dropped."""
        for slot in slots:
            if self.phase[slot] == FREE:
                continue
            if self.phase[slot] == READY:
                self._serving = None
            lost = int(self.sessions[slot])
            self.dropped += lost
            again = sum(1 for end in self._returned.pop(slot, ()) if end > self.step)
            self.returns_due += max(0, lost - again)
            self.sessions[slot] = 0
            self.calendar[self.step + 1 : self.step + self.horizon + 1, slot] = 0
            self.phase[slot] = FREE
            self._pending.discard(slot)
            del self.by_name[self.name(slot)]
            self._free.append(slot)

    # -- time --------------------------------------------------------------------------------------------

    def advance(self, step: int, now: float) -> None:
        """Move to `step`: finish clones and boots that are due, end the sessions that expire."""
        self.step = step
        for slot in list(self._pending):
            phase = self.phase[slot]
            if phase == CLONING and now >= self.clone_done_at[slot]:
                self.phase[slot] = phase = BOOTING
            if phase in (BOOTING, STARTING) and now >= self.ready_at[slot]:
                self.phase[slot] = READY
                self._serving = None
                self._pending.discard(slot)
            elif phase == WARM and now >= self.clone_done_at[slot]:
                self._pending.discard(slot)
        row = self.calendar[step]
        self.sessions -= row[: self.slots]
        self.waiting -= int(row[self.slots])

    def arrive(self, lifetimes: npt.NDArray[np.int32], *, returning: int = 0) -> None:
        """Place new sessions (given by their lifetimes in steps) on the serving VMs; the last
        `returning` of them are dropped users coming back (remembered, so they come back only once)."""
        serving = self.serving()
        if len(serving) == 0:
            if len(lifetimes):
                np.add.at(self.calendar[:, self.slots], self.step + lifetimes, 1)
                self.waiting += len(lifetimes)
            return
        if self.waiting:
            self._place_waiting(serving)
        n = len(lifetimes)
        if n == 0:
            return
        current = self.sessions[serving]
        order = np.argsort(current, kind="stable")
        levels_sorted = current[order]
        cums = np.cumsum(levels_sorted)
        k_range = np.arange(1, len(serving) + 1)
        water = (n + cums) / k_range
        fits = np.empty(len(serving), dtype=bool)
        fits[:-1] = water[:-1] <= levels_sorted[1:]
        fits[-1] = True
        k = int(np.argmax(fits)) + 1
        base, extra = divmod(int(n + cums[k - 1]), k)
        counts = base - levels_sorted[:k]
        counts[:extra] += 1
        targets = serving[order[:k]]
        self.sessions[targets] += counts
        columns = np.repeat(targets, counts)
        np.add.at(self.calendar, (self.step + lifetimes, columns), 1)
        if returning:
            ends = (self.step + lifetimes[n - returning :]).tolist()
            for slot, end in zip(columns[n - returning :].tolist(), ends, strict=True):
                kept = self._returned.setdefault(slot, [])
                kept.append(end)
                if len(kept) > 4 * self.params.capacity:  # forget the returns that have ended
                    kept[:] = [e for e in kept if e > self.step]

    def _place_waiting(self, serving: npt.NDArray[np.int64]) -> None:
        """Users who waited at the load balancer retry: spread them evenly over the serving VMs."""
        rows = slice(self.step + 1, self.step + self.horizon + 1)
        column = self.calendar[rows, self.slots].astype(np.int64)
        k = len(serving)
        for j, slot in enumerate(serving):
            share = column * (j + 1) // k - column * j // k
            self.calendar[rows, slot] += share.astype(np.int32)
            self.sessions[slot] += int(share.sum())
        self.calendar[rows, self.slots] = 0
        self.waiting = 0

    # -- what the benchmark measures ---------------------------------------------------------------------

    def overload(self) -> int:
        """Sessions above capacity on each VM, plus users with no VM at all."""
        excess = self.sessions - self.params.capacity
        return int(excess[excess > 0].sum()) + self.waiting

    def running(self) -> int:
        return self.count(*RUNNING)


_LOOKUPS: dict[tuple[int, ...], npt.NDArray[np.bool_]] = {}


def _lookup(phases: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """A phase → member table: indexing it with the phase array is much cheaper than `np.isin`."""
    table = _LOOKUPS.get(phases)
    if table is None:
        table = np.zeros(8, dtype=bool)
        table[list(phases)] = True
        _LOOKUPS[phases] = table
    return table
