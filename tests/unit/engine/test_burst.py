"""The burst response: detection against Holt's one-round prediction, the count it asks for, its hold,
and what it must never do (fire on a steady load, exceed the rate policies or max)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_scaler import model, webappscaling
from webapp_scaler.engine import burst, decide, limits, recommend

NOW = 100_000.0
R, W, B = model.VMPhase.READY, model.VMPhase.WARM, model.VMPhase.BOOTING
PREDICTION = webappscaling.PredictionSpec()
TARGET = 80.0


def spec(**fields: Any) -> webappscaling.ScalingSpec:
    raw: dict[str, Any] = {"replicas": {"min": 1, "max": 100}, "warmPool": {"size": 2}}
    raw.update(fields)
    return webappscaling.ScalingSpec.from_spec(raw)


def fleet(sessions: float, ready: int, warm: int = 2, booting: int = 0) -> list[model.VMState]:
    vms = [model.VMState(f"vm-{i}", R, 0.0, ready_at=90.0, sessions=sessions / ready) for i in range(ready)]
    vms += [model.VMState(f"warm-{i}", W, 0.0) for i in range(warm)]
    vms += [model.VMState(f"boot-{i}", B, NOW - 10) for i in range(booting)]
    return vms


def steady(s: webappscaling.ScalingSpec, sessions: float, ready: int, rounds: int = 12) -> model.Decision:
    """`rounds` rounds of the same load, ending one round before NOW."""
    memory = model.EngineMemory()
    d = None
    for i in range(rounds):
        d = decide.decide(NOW - 15 * (rounds - i), s, fleet(sessions, ready), memory)
        memory = d.memory
    assert d is not None
    return d


def test_a_rise_within_the_margin_is_no_burst_and_one_beyond_it_is() -> None:
    trend = model.Trend(level=320.0, slope=0.0, at=NOW - 15)
    predicted = burst.one_round_prediction(trend, at=NOW, spec=PREDICTION)
    edge = predicted + burst.margin(predicted, TARGET)
    common = {"now": NOW, "target_per_vm": TARGET, "spec": PREDICTION}
    assert burst.outpaces(trend, sessions=edge, **common) is None
    assert burst.outpaces(trend, sessions=edge + 1, **common) == predicted
    assert burst.outpaces(None, sessions=edge + 1, **common) is None  # nothing predicted yet


def test_the_margin_is_relative_on_a_big_fleet_and_absolute_on_a_small_one() -> None:
    assert burst.margin(10_000.0, TARGET) == burst.RELATIVE_MARGIN * 10_000.0
    assert burst.margin(0.0, TARGET) == burst.ABSOLUTE_MARGIN * TARGET


def test_the_rise_is_measured_over_the_last_minute() -> None:
    samples = [model.Sample(NOW - 15 * k, 100.0 + 10 * (8 - k)) for k in range(8, 0, -1)]
    oldest_in_minute = next(s for s in samples if s.at >= NOW - burst.RISE_SECONDS)
    up = burst.rise(samples, sessions=300.0, now=NOW)
    assert up == (300.0 - oldest_in_minute.sessions) / (NOW - oldest_in_minute.at)
    assert burst.rise(samples, sessions=0.0, now=NOW) == 0.0  # a fall is no rise
    assert burst.rise([], sessions=300.0, now=NOW) == 0.0


def test_a_flash_crowd_starts_every_warm_vm_and_clones_at_the_rate_limit() -> None:
    s = spec()
    before = steady(s, 320.0, 4)
    jump = decide.decide(NOW, s, fleet(480.0, 4), before.memory)  # +50 % in one round
    assert "burst: " in jump.message
    assert jump.memory.burst_until is not None and jump.memory.burst_until > NOW
    assert len(jump.start) == 2  # every warm VM
    up_limit = limits.scale_up_limit(4, s.behavior.scale_up, now=NOW, up_events=(), down_events=())
    assert jump.desired == up_limit  # the demand asks for more than one round may add
    assert jump.forecast_sessions is not None
    usual = recommend.replicas_for(max(jump.forecast_sessions, jump.average_sessions or 0.0), TARGET)
    assert jump.desired > usual


def test_without_prediction_there_is_no_burst_response() -> None:
    s = spec(prediction={"enabled": False})
    before = steady(s, 320.0, 4)
    jump = decide.decide(NOW, s, fleet(640.0, 4), before.memory)
    assert "burst" not in jump.message and jump.memory.burst_until is None
    assert jump.desired < limits.scale_up_limit(4, s.behavior.scale_up, now=NOW, up_events=(), down_events=())


def test_a_burst_the_fleet_already_covers_asks_for_nothing_and_holds_nothing() -> None:
    s = spec()
    before = steady(s, 320.0, 40)  # 40 VMs for 320 sessions: a burst of a few hundred fits
    jump = decide.decide(NOW, s, fleet(480.0, 40), before.memory)
    assert burst.outpaces(before.memory.trend, sessions=480.0, now=NOW, target_per_vm=TARGET, spec=s.prediction)
    assert jump.memory.burst_until is None and "burst" not in jump.message
    assert jump.start == () and jump.create == 0


def test_the_count_a_burst_asked_for_holds_until_its_vms_could_be_up() -> None:
    s = spec(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    before = steady(s, 320.0, 4)
    jump = decide.decide(NOW, s, fleet(640.0, 4), before.memory)
    held_until = jump.memory.burst_until
    assert held_until is not None
    memory, t = jump.memory, NOW
    booting = jump.desired - 4 - len(jump.start)
    while t + 15 < held_until:
        t += 15  # the crowd stops at once: the load the burst saw stays, the new VMs are still booting
        d = decide.decide(t, s, fleet(640.0, 4, warm=0, booting=booting + len(jump.start)), memory)
        assert d.desired >= jump.desired and d.delete == ()
        memory = d.memory
    after = decide.decide(held_until, s, fleet(200.0, 4, warm=0, booting=booting + len(jump.start)), memory)
    assert after.memory.burst_until is None and after.desired < jump.desired


@settings(max_examples=60, deadline=None)
@given(level=st.floats(0, 20_000), ready=st.integers(1, 60), rounds=st.integers(2, 20))
def test_a_steady_load_never_bursts(level: float, ready: int, rounds: int) -> None:
    s = spec(replicas={"min": 1, "max": 500})
    memory = model.EngineMemory()
    for i in range(rounds):
        d = decide.decide(NOW + 15 * i, s, fleet(level, ready), memory)
        assert "burst" not in d.message and d.memory.burst_until is None
        memory = d.memory


@settings(max_examples=60, deadline=None)
@given(
    level=st.floats(0, 5_000),
    factor=st.floats(1, 60),
    ready=st.integers(1, 30),
    warm=st.integers(0, 5),
    high=st.integers(1, 80),
)
def test_a_burst_never_exceeds_the_rate_policies_or_max(
    level: float, factor: float, ready: int, warm: int, high: int
) -> None:
    s = spec(replicas={"min": 1, "max": max(high, ready)}, warmPool={"size": warm})
    before = steady(s, level, ready)
    d = decide.decide(NOW, s, fleet(level * factor, ready, warm=warm), before.memory)
    up_limit = limits.scale_up_limit(
        ready,
        s.behavior.scale_up,
        now=NOW,
        up_events=before.memory.scale_up_events,
        down_events=before.memory.scale_down_events,
    )
    assert d.desired <= max(ready, min(up_limit, s.replicas.max))
    assert len(d.start) + d.create + len(d.return_to_service) == max(0, d.desired - ready)


@settings(max_examples=60, deadline=None)
@given(history=st.lists(st.floats(0, 5_000), min_size=2, max_size=10), low=st.floats(0, 10_000))
def test_more_observed_sessions_never_ask_for_less(history: list[float], low: float) -> None:
    samples = [model.Sample(NOW - 15 * (len(history) - i), v) for i, v in enumerate(history)]
    trend = model.Trend(level=history[-1], slope=(history[-1] - history[-2]) / 15, at=NOW - 15)
    common: dict[str, Any] = {"held_until": NOW + 60, "now": NOW, "lead_seconds": 90.0, "interval": 15.0}
    common |= {"target_per_vm": TARGET, "spec": PREDICTION}
    less = burst.respond(trend, samples, sessions=low, **common)
    more = burst.respond(trend, samples, sessions=low + 100, **common)
    assert less is not None and more is not None  # held
    assert more.demand >= less.demand
