"""Moving averages over timestamped samples."""

from __future__ import annotations

import math

import pytest

from webapp_scaler import model, webappscaling
from webapp_scaler.engine import average

NOW = 1_000.0
RAMP = tuple(model.Sample(NOW - age, value) for age, value in ((150, 10), (105, 100), (60, 200), (30, 300), (0, 400)))


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        pytest.param(120, (100 + 200 + 300 + 400) / 4, id="two-minutes"),
        pytest.param(105, (200 + 300 + 400) / 3, id="cutoff-excluded"),
        pytest.param(0, 400.0, id="zero-window-is-latest"),
        pytest.param(10_000, (10 + 100 + 200 + 300 + 400) / 5, id="everything"),
    ],
)
def test_simple_average(window: int, expected: float) -> None:
    assert average.simple_moving_average(RAMP, NOW, window) == pytest.approx(expected)


def test_exponential_average_weighs_recent_samples_more() -> None:
    simple = average.simple_moving_average(RAMP, NOW, 120)
    exponential = average.exponential_moving_average(RAMP, NOW, 120)
    weights = [math.exp(-age / 40) for age in (105, 60, 30, 0)]
    expected = sum(w * v for w, v in zip(weights, (100, 200, 300, 400), strict=True)) / sum(weights)
    assert exponential == pytest.approx(expected)
    assert simple is not None and exponential is not None and exponential > simple


def test_no_sample_in_window_is_no_average() -> None:
    old = (model.Sample(NOW - 500, 10),)
    assert average.simple_moving_average(old, NOW, 120) is None
    assert average.moving_average((), NOW, webappscaling.MovingAverageSpec("Exponential", 60)) is None


def test_constant_load_averages_to_itself_in_both_kinds() -> None:
    flat = tuple(model.Sample(NOW - 15 * i, 250.0) for i in range(10))
    for kind in ("Simple", "Exponential"):
        assert average.moving_average(flat, NOW, webappscaling.MovingAverageSpec(kind, 120)) == pytest.approx(250.0)
