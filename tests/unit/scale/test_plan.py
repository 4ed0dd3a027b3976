"""The load plan: what each object's agents report over time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp_scaler_dev.scale.plan import LoadPlan, split

PLAN = LoadPlan(objects=4, base=90, high=114, period_s=100.0, hold_s=40.0)


def test_before_the_steps_start_every_object_holds_its_base() -> None:
    assert {PLAN.sessions(i, 1e9) for i in range(4)} == {90}
    started = LoadPlan(objects=4, base=90, high=114, period_s=100.0, hold_s=40.0, steps_from=1000.0)
    assert {started.sessions(i, 999.0) for i in range(4)} == {90}


def test_each_object_rises_for_hold_s_once_per_period_shifted_by_its_share() -> None:
    plan = LoadPlan(objects=4, base=90, high=114, period_s=100.0, hold_s=40.0, steps_from=1000.0)
    assert plan.sessions(0, 1000.0) == 114
    assert plan.sessions(0, 1039.9) == 114
    assert plan.sessions(0, 1040.0) == 90
    assert plan.sessions(0, 1100.0) == 114
    assert plan.sessions(1, 1024.9) == 90  # object 1 is a quarter period later
    assert plan.sessions(1, 1025.0) == 114
    assert plan.rises(1, 1000.0, 1300.0) == [1025.0, 1125.0, 1225.0]


def test_a_frozen_plan_stays_where_it_was() -> None:
    plan = LoadPlan(objects=4, base=90, high=114, period_s=100.0, hold_s=40.0, steps_from=1000.0, frozen_at=1010.0)
    assert plan.sessions(0, 5000.0) == 114
    assert plan.sessions(1, 5000.0) == 90
    assert plan.rises(1, 1000.0, 5000.0) == []


@pytest.mark.parametrize(
    "changes",
    [{"objects": 0}, {"high": 80}, {"hold_s": 0.0}, {"hold_s": 100.0}, {"ramp_s": 0.0}],
)
def test_a_plan_that_cannot_work_is_refused(changes: dict[str, float]) -> None:
    values = {"objects": 4, "base": 90, "high": 114, "period_s": 100.0, "hold_s": 40.0} | changes
    with pytest.raises(ValueError, match=r"a plan needs|hold_s must|ramp_s must"):
        LoadPlan(**values)  # type: ignore[arg-type]


@given(st.integers(0, 10_000), st.integers(1, 50))
def test_split_hands_out_every_session_and_no_vm_holds_two_more_than_another(total: int, members: int) -> None:
    shares = [split(total, members, i) for i in range(members)]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


@given(st.integers(0, 199), st.floats(0, 10_000))
def test_the_share_of_rising_objects_is_hold_over_period(index: int, offset: float) -> None:
    """Over a whole period every object is up exactly hold_s seconds (sampled each second)."""
    plan = LoadPlan(objects=200, base=1, high=2, period_s=100.0, hold_s=40.0, steps_from=0.0)
    start = 100.0 + offset
    up = sum(plan.sessions(index, start + t) == 2 for t in range(100))
    assert up == 40


def test_the_ramp_climbs_from_nothing_to_the_base_and_the_steps_follow_it() -> None:
    plan = LoadPlan(objects=4, base=90, high=114, period_s=100.0, hold_s=40.0, ramp_s=300.0, ramp_from=0.0)
    assert [plan.sessions(0, t) for t in (-5.0, 0.0, 150.0, 299.0, 300.0)] == [0, 0, 45, 89, 90]
    stepped = LoadPlan(
        objects=4, base=90, high=114, period_s=100.0, hold_s=40.0, ramp_s=300.0, ramp_from=0.0, steps_from=300.0
    )
    assert stepped.sessions(0, 310.0) == 114


@given(st.floats(0, 1000), st.floats(0, 1000))
def test_the_ramp_never_falls(a: float, b: float) -> None:
    plan = LoadPlan(objects=1, base=90, high=114, ramp_s=300.0, ramp_from=0.0)
    earlier, later = sorted((a, b))
    assert plan.sessions(0, earlier) <= plan.sessions(0, later)
