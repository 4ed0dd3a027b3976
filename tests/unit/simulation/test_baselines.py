"""The baselines' metric arithmetic, pinned to HPA's replica calculator (target 80 sessions per VM)."""

from __future__ import annotations

import pytest

from webapp_scaler_dev.simulation.policies import hpa, keda


@pytest.mark.parametrize(
    ("metrics", "missing", "current", "expected"),
    [
        pytest.param([80, 80, 80], 0, 3, 3, id="at-target"),
        pytest.param([85, 86, 87], 0, 3, 3, id="inside-tolerance"),
        pytest.param([120, 120, 120], 0, 3, 5, id="ratio-1.5-up"),
        pytest.param([40, 40, 40, 40], 0, 4, 2, id="ratio-0.5-down"),
        pytest.param([160, 160], 1, 3, 4, id="missing-as-zero-on-scale-up"),
        pytest.param([100, 100], 2, 4, 4, id="scale-up-flips-with-missing-so-hold"),
        pytest.param([20, 20], 1, 3, 2, id="missing-as-target-on-scale-down"),
        pytest.param([60], 3, 4, 4, id="scale-down-inside-tolerance-after-fill"),
        pytest.param([], 2, 2, None, id="no-metrics-no-decision"),
    ],
)
def test_calc_plain_metric_replicas(metrics: list[float], missing: int, current: int, expected: int | None) -> None:
    assert (
        hpa.calc_plain_metric_replicas(metrics, missing=missing, current=current, target=80, tolerance=0.1) == expected
    )


@pytest.mark.parametrize(
    ("total", "status", "expected"),
    [
        pytest.param(400, 5, 5, id="at-target"),
        pytest.param(430, 5, 5, id="inside-tolerance"),
        pytest.param(900, 5, 12, id="up"),
        pytest.param(100, 5, 2, id="down"),
        pytest.param(100, 0, 2, id="from-zero"),
    ],
)
def test_external_per_pod_replicas(total: float, status: int, expected: int) -> None:
    assert keda.external_per_pod_replicas(total, status_replicas=status, target=80, tolerance=0.1) == expected
