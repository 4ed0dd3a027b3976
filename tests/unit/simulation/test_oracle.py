"""`oracle-drain`, the session-keeping floor: best-fit packing, instant VMs, removal the moment a VM empties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_scaler_dev.simulation.policies import oracle


def stream(per_step: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrivals = np.asarray([len(s) for s in per_step], dtype=np.int64)
    bounds = np.concatenate(([0], np.cumsum(arrivals))).astype(np.int64)
    lifetimes = np.asarray([x for s in per_step for x in s], dtype=np.int32)
    return arrivals, bounds, lifetimes


def test_new_sessions_fill_the_fullest_vm_first_and_an_empty_vm_goes() -> None:
    arrivals, bounds, lifetimes = stream([[10] * 150, [2] * 30, [], [5] * 10])
    packed = oracle.pack(arrivals, bounds, lifetimes, capacity=100, max_lifetime_steps=10)
    assert packed.vms[:2].tolist() == [2, 2]  # 150 → 100 + 50, then 30 more join the 50 (the fullest with room)
    assert packed.created[:2].tolist() == [2, 0]
    # the 30 short sessions end at step 3; the 10 new ones find the first VM still full and join the second
    assert packed.vms[3] == 2 and packed.created[3] == 0


@settings(max_examples=30, deadline=None)
@given(
    per_step=st.lists(st.lists(st.integers(1, 12), max_size=260), min_size=1, max_size=20),
    capacity=st.integers(1, 120),
)
def test_packing_never_overloads_and_uses_at_most_one_partly_filled_vm_more_than_needed(
    per_step: list[list[int]], capacity: int
) -> None:
    arrivals, bounds, lifetimes = stream(per_step)
    packed = oracle.pack(arrivals, bounds, lifetimes, capacity=capacity, max_lifetime_steps=12)
    n = len(arrivals)
    delta = np.zeros(n + 13, dtype=np.int64)
    delta[:n] += arrivals
    np.add.at(delta, np.repeat(np.arange(n), arrivals) + lifetimes, -1)
    live = np.cumsum(delta)[:n]
    assert np.array_equal(packed.sessions, live)  # nobody is dropped
    assert (packed.vms >= np.maximum(1, np.ceil(live / capacity))).all()  # nobody above capacity
    assert packed.created.sum() >= packed.vms.max() - 1
