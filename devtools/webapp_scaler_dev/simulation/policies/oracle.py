"""The two floors no real policy reaches; they tell how close to the best the others get.

- `oracle`: every minute exactly ceil(sessions / capacity) VMs, ready the moment they are needed,
  removed the moment they are not, sessions moving freely between them. The floor on VM-minutes, but
  not one a session-keeping policy can reach: real sessions are sticky.
- `oracle-drain`: the floor for a policy that keeps every session where it started. It knows the future
  in the only way that matters here — a VM is there the instant it is needed — sends each new session to
  the fullest VM with room (packing to capacity, so VMs empty as soon as their last users leave), and
  removes a VM the moment it empties. It never overloads and never drops; its VM-minutes are what
  stickiness with the session model's idle timeout costs at best.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt


def needed_per_minute(concurrent: npt.NDArray[np.int64], steps_per_minute: int, capacity: int) -> npt.NDArray[np.int64]:
    minutes = len(concurrent) // steps_per_minute
    peak = concurrent[: minutes * steps_per_minute].reshape(minutes, steps_per_minute).max(axis=1)
    return np.asarray(np.maximum(1, np.ceil(peak / capacity)), dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class Packed:
    """What `pack` measured, per simulation step."""

    vms: npt.NDArray[np.int64]  # VMs holding at least one session (at least one VM, as min replicas)
    created: npt.NDArray[np.int64]  # VMs added at the step
    sessions: npt.NDArray[np.int64]


def pack(
    arrivals: npt.NDArray[np.int64],
    bounds: npt.NDArray[np.int64],
    lifetimes: npt.NDArray[np.int32],
    *,
    capacity: int,
    max_lifetime_steps: int,
) -> Packed:
    """Run `oracle-drain` over a session stream: best fit (the fullest VM with room) for every new
    session, a new VM the moment none has room, a VM gone the moment its last session ends.

    Filling the VMs fullest-first is the same as placing the step's sessions one by one on the fullest
    VM with room: a VM that takes a session stays the fullest until it is full."""
    steps = len(arrivals)
    slots = 64
    calendar = np.zeros((steps + max_lifetime_steps + 2, slots), dtype=np.int32)
    load = np.zeros(slots, dtype=np.int64)
    used = np.zeros(slots, dtype=bool)
    vms = np.zeros(steps, dtype=np.int64)
    created = np.zeros(steps, dtype=np.int64)
    live = np.zeros(steps, dtype=np.int64)
    for step in range(steps):
        load -= calendar[step]
        used &= load > 0
        new = lifetimes[bounds[step] : bounds[step + 1]]
        n = len(new)
        if n:
            open_slots = np.flatnonzero(used)
            order = open_slots[np.argsort(-load[open_slots], kind="stable")]
            room = capacity - load[order]
            take = np.minimum(room, np.maximum(0, n - (np.cumsum(room) - room)))
            extra = n - int(take.sum())
            fresh = -(-extra // capacity)
            free = np.flatnonzero(~used)
            if len(free) < fresh:
                grow = max(slots, fresh)
                calendar = np.concatenate([calendar, np.zeros((calendar.shape[0], grow), dtype=np.int32)], axis=1)
                load = np.concatenate([load, np.zeros(grow, dtype=np.int64)])
                used = np.concatenate([used, np.zeros(grow, dtype=bool)])
                slots += grow
                free = np.flatnonzero(~used)
            fresh_slots = free[:fresh]
            fresh_take = np.full(fresh, capacity, dtype=np.int64)
            if fresh:
                fresh_take[-1] = extra - capacity * (fresh - 1)
            targets = np.concatenate([order, fresh_slots])
            counts = np.concatenate([take, fresh_take])
            load[targets] += counts
            used[fresh_slots] = True
            np.add.at(calendar, (step + new, np.repeat(targets, counts)), 1)
            created[step] = fresh
        vms[step] = max(1, int(used.sum()))
        live[step] = int(load.sum())
    return Packed(vms, created, live)
