"""The baselines' metric arithmetic, pinned to HPA's replica calculator (target 80 sessions per VM)."""

from __future__ import annotations

import pytest

from webapp_scaler import webappscaling
from webapp_scaler_dev.simulation import fleet as sim_fleet
from webapp_scaler_dev.simulation import settings as sim_settings
from webapp_scaler_dev.simulation.policies import hpa, hpa_drain_tuned, keda, webapp_scaler


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


def tuned_and_fleet(sessions: list[int]) -> tuple[hpa_drain_tuned.HpaDrainTuned, sim_fleet.SimulatedFleet]:
    settings = sim_settings.SimulationSettings(min_replicas=1, max_replicas=20)
    fleet = sim_fleet.SimulatedFleet(
        settings.fleet_params(), steps=200, step_seconds=15, max_lifetime_steps=100, seed=1, slots=32
    )
    fleet.create(-1000, len(sessions))
    fleet.advance(0, 0)
    for slot, n in enumerate(sessions):
        fleet.sessions[slot] = n
        fleet.calendar[150, slot] = n
    return hpa_drain_tuned.HpaDrainTuned(settings), fleet


def test_the_tuned_hpa_reads_the_agents_at_every_sync_without_prometheus_lag() -> None:
    policy, fleet = tuned_and_fleet([80, 80])
    policy.act(0.0, fleet)
    fleet.sessions[:2] = 160  # 15 s later the load doubled: a Prometheus 30 s scrape would not see it yet
    policy.act(15.0, fleet)
    assert sorted(policy.scraped.values()) == [160.0, 160.0]
    assert policy.desired == 4


def test_the_tuned_hpa_drains_after_its_60_s_window_not_hpas_300() -> None:
    policy, fleet = tuned_and_fleet([20, 20, 20, 20])
    assert policy.behavior.scale_down.stabilization_window_seconds == 60
    assert policy.behavior.scale_up == webappscaling.HPA_BEHAVIOR.scale_up
    for at in range(0, 76, 15):
        policy.act(float(at), fleet)
    assert policy.desired == 1
    assert fleet.count(sim_fleet.DRAINING) == 3 and fleet.dropped == 0  # drained, not deleted


def test_a_what_if_engine_spec_changes_one_field_and_keeps_the_shared_settings() -> None:
    settings = sim_settings.SimulationSettings(
        engine_spec='{"warmPool": {"size": 0}, "sessions": {"scrapeIntervalSeconds": 30}}'
    )
    spec = webapp_scaler.WebAppScaler(settings).spec
    assert spec.warm_pool.size == 0
    assert spec.sessions.scrape_interval_seconds == 30
    assert spec.sessions.target_per_vm == settings.target_per_vm  # merged into the section, not replacing it
    assert spec.replicas.max == settings.max_replicas
    default = webapp_scaler.WebAppScaler(sim_settings.SimulationSettings()).spec
    assert default.warm_pool == webappscaling.WarmPoolSpec()
