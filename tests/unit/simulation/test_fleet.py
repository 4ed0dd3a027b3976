"""The fleet and its load balancer: boot timing, least-sessions placement, stickiness, drain and drop."""

from __future__ import annotations

import numpy as np
import pytest

from webapp_scaler_dev.simulation import fleet as sim_fleet

PARAMS = sim_fleet.FleetParams(capacity=100, boot_seconds=90, clone_share=0.5, jitter=0.0)


def new_fleet(ready: int = 0) -> sim_fleet.SimulatedFleet:
    fleet = sim_fleet.SimulatedFleet(PARAMS, steps=400, step_seconds=15, max_lifetime_steps=20, seed=1, slots=16)
    fleet.create(-1000, ready)
    fleet.advance(0, 0)
    return fleet


def lifetimes(n: int, steps: int = 10) -> np.ndarray:
    return np.full(n, steps, dtype=np.int32)


def test_a_clone_boots_in_the_boot_time_and_a_warm_vm_in_its_boot_part() -> None:
    fleet = new_fleet()
    fleet.create(0, 1)
    fleet.create(0, 1, warm=True)
    warm = fleet.slots_in(sim_fleet.WARM)
    for step, phase in ((1, sim_fleet.CLONING), (3, sim_fleet.BOOTING), (6, sim_fleet.READY)):
        fleet.advance(step, step * 15)
        assert fleet.phase[0] == phase
    fleet.start(90, warm)
    fleet.advance(8, 120)
    assert fleet.phase[warm[0]] == sim_fleet.STARTING
    fleet.advance(9, 135)
    assert fleet.phase[warm[0]] == sim_fleet.READY  # 45 s after the start


def test_new_sessions_go_to_the_least_loaded_ready_vms() -> None:
    fleet = new_fleet(3)
    fleet.arrive(lifetimes(10))
    assert sorted(fleet.sessions[:3].tolist()) == [3, 3, 4]
    fleet.drain(0, [0])
    fleet.advance(1, 15)
    fleet.arrive(lifetimes(7))
    assert fleet.sessions[0] in (3, 4)  # a draining VM keeps its users and gets no new ones
    assert fleet.sessions[1:3].sum() == 17 - fleet.sessions[0]
    assert abs(int(fleet.sessions[1]) - int(fleet.sessions[2])) <= 1


def test_water_fill_tops_up_the_emptiest_first() -> None:
    fleet = new_fleet(3)
    fleet.arrive(lifetimes(30))
    fleet.create(15, 1)
    for step in range(1, 8):
        fleet.advance(step, step * 15)
    fleet.arrive(lifetimes(12))
    # One by one to the least loaded: 10 to the new VM, then the last two to any of the four tied VMs.
    assert fleet.sessions[3] in (10, 11)
    assert sorted(fleet.sessions[:4].tolist()) == [10, 10, 11, 11]


def test_sessions_end_after_their_lifetime_and_a_drained_vm_empties() -> None:
    fleet = new_fleet(1)
    fleet.arrive(lifetimes(5, steps=3))
    fleet.drain(0, [0])
    for step in (1, 2):
        fleet.advance(step, step * 15)
        assert fleet.sessions[0] == 5
    fleet.advance(3, 45)
    assert fleet.sessions[0] == 0
    assert fleet.dropped == 0


def test_deleting_a_vm_drops_its_sessions_and_forgets_their_ends() -> None:
    fleet = new_fleet(2)
    fleet.arrive(lifetimes(6, steps=4))
    fleet.delete([0])
    assert fleet.dropped == 3
    fleet.create(0, 1)  # reuses the slot
    for step in range(1, 8):
        fleet.advance(step, step * 15)
    assert fleet.sessions.min() >= 0
    assert fleet.sessions.sum() == 0


def test_users_wait_when_nothing_is_ready_and_count_as_overload() -> None:
    fleet = new_fleet()
    fleet.create(0, 1)
    fleet.arrive(lifetimes(8, steps=15))
    assert (fleet.waiting, fleet.overload()) == (8, 8)
    for step in range(1, 7):
        fleet.advance(step, step * 15)
    fleet.arrive(lifetimes(0))
    assert (fleet.waiting, int(fleet.sessions.sum())) == (0, 8)


@pytest.mark.parametrize(("arrivals", "overload"), [(100, 0), (130, 30)])
def test_overload_is_sessions_above_capacity(arrivals: int, overload: int) -> None:
    fleet = new_fleet(1)
    fleet.arrive(lifetimes(arrivals))
    assert fleet.overload() == overload


def test_a_dropped_user_comes_back_once() -> None:
    fleet = new_fleet(2)
    fleet.arrive(lifetimes(6, steps=8))
    fleet.delete([0])
    assert fleet.returns_due == 3  # every user of the deleted VM comes back
    back = fleet.returns_due
    fleet.returns_due = 0
    fleet.advance(1, 15)
    fleet.arrive(lifetimes(back, steps=8), returning=back)
    assert int(fleet.sessions.sum()) == 6
    fleet.delete([1])
    # VM 1 held its own three users and the three returns: only its own come back
    assert fleet.dropped == 9
    assert fleet.returns_due == 3


def test_a_return_that_has_ended_is_forgotten() -> None:
    fleet = new_fleet(1)
    fleet.arrive(lifetimes(2, steps=2), returning=2)
    for step in (1, 2):
        fleet.advance(step, step * 15)
    fleet.arrive(lifetimes(4, steps=10))
    fleet.delete([0])
    assert (fleet.dropped, fleet.returns_due) == (4, 4)
