"""The one-time shift that spreads the rounds of loops started together."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from webapp_scaler.handlers import spread


@given(st.text(min_size=1))
def test_the_shift_is_under_half_an_interval_and_the_same_for_the_same_object(key: str) -> None:
    assert 0 <= spread(key) < 0.5
    assert spread(key) == spread(key)


def test_a_thousand_objects_spread_over_the_half_interval() -> None:
    shifts = [spread(f"scale-{i // 100:03d}/app-{i:04d}") for i in range(1000)]
    tenths = {int(s * 20) for s in shifts}  # ten buckets of a twentieth of an interval each
    assert tenths == set(range(10))
