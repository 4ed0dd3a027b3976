"""HPA's AverageValue proposal with its tolerance band, worked by hand (4 VMs, target 80, tolerance 0.1)."""

from __future__ import annotations

import pytest

from webapp_scaler.engine import recommend


@pytest.mark.parametrize(
    ("demand", "expected"),
    [
        pytest.param(320.0, 4, id="exactly-at-target"),
        pytest.param(350.0, 4, id="ratio-1.094-inside-band"),
        pytest.param(352.0, 5, id="ratio-1.1-float-edge-scales-as-in-go"),
        pytest.param(351.0, 4, id="ratio-1.097-stays"),
        pytest.param(355.0, 5, id="ratio-1.109-scales-up"),
        pytest.param(290.0, 4, id="ratio-0.906-inside-band"),
        pytest.param(280.0, 4, id="ratio-0.875-outside-but-ceil-is-4"),
        pytest.param(230.0, 3, id="ratio-0.72-scales-down"),
        pytest.param(0.0, 0, id="no-sessions-asks-zero"),
        pytest.param(1000.0, 13, id="ratio-3.1"),
    ],
)
def test_tolerance_band(demand: float, expected: int) -> None:
    assert recommend.recommend_replicas(demand, 4, 80.0, 0.1) == expected


def test_float_noise_does_not_add_a_vm() -> None:
    assert recommend.replicas_for(240.00000000001, 80.0) == 3


def test_zero_current_sizes_for_the_demand() -> None:
    assert recommend.recommend_replicas(170.0, 0, 80.0, 0.1) == 3
