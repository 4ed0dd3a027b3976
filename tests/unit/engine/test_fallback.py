"""Missing and invalid readings never scale in, and `spec.sessions.fallback` (KEDA's fallback, kedacore/keda
`pkg/fallback/fallback.go`): hold by default, `replicas` at target once more than `failureThreshold` rounds in
a row had no valid reading. The engine is pure, so these are plain calls, no clock, no I/O."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_scaler import model, webappscaling
from webapp_scaler.constants import Reason
from webapp_scaler.engine import decide, observe

R, D = model.VMPhase.READY, model.VMPhase.DRAINING
NOW = 10_000.0
REPLICAS = webappscaling.FallbackSpec(failure_threshold=3, replicas=5)


def fleet(*sessions: float | None) -> list[model.VMState]:
    return [model.VMState(f"vm-{i}", R, 0.0, ready_at=1.0, sessions=s) for i, s in enumerate(sessions)]


def test_the_failed_rounds_are_counted_and_reset_by_one_valid_reading() -> None:
    failed = 0
    for expected in (1, 2, 3):
        seen = observe.observe(fleet(None, float("nan")), target_per_vm=10, current=2, failed_rounds=failed)
        assert (seen.sessions, seen.failed_rounds) == (None, expected)
        failed = seen.failed_rounds
    assert observe.observe(fleet(None, 4), target_per_vm=10, current=2, failed_rounds=failed).failed_rounds == 0
    assert observe.observe(fleet(3, 4), target_per_vm=10, current=2, failed_rounds=failed).failed_rounds == 0


def test_replicas_apply_only_after_more_than_failure_threshold_failed_rounds() -> None:
    """KEDA falls back when NumberOfFailures > FailureThreshold: the 4th failed round with threshold 3."""
    vms = [*fleet(None, 1e308), model.VMState("old", D, 0.0, sessions=7)]
    third = observe.observe(vms, target_per_vm=10, current=2, fallback=REPLICAS, failed_rounds=2)
    assert (third.sessions, third.fallback) == (None, False)
    fourth = observe.observe(vms, target_per_vm=10, current=2, fallback=REPLICAS, failed_rounds=3)
    # 5 VMs exactly at target, and the draining VM's users, which the decision takes out again
    assert (fourth.sessions, fourth.fallback, fourth.draining_sessions) == (57.0, True, 7.0)


def test_without_replicas_the_count_is_held_however_long_it_fails() -> None:
    seen = observe.observe(
        fleet(None), target_per_vm=10, current=1, fallback=webappscaling.FallbackSpec(), failed_rounds=999
    )
    assert (seen.sessions, seen.fallback, seen.failed_rounds) == (None, False, 1000)


def _spec() -> webappscaling.ScalingSpec:
    return webappscaling.ScalingSpec.from_spec(
        {
            "replicas": {"min": 1, "max": 10},
            "sessions": {"targetPerVM": 10, "movingAverage": {"windowSeconds": 60}},
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "prediction": {"enabled": False},
            "scaleIn": {"drain": {"enabled": False}},
            "warmPool": {"size": 0},
        }
    )


def test_one_absurd_agent_never_moves_the_fleet() -> None:
    """Issue 12: 1e308 on one VM of 3 scaled to 7; the other two alone point to a scale-in (3 → 1)."""
    d = decide.decide(NOW, _spec(), fleet(1e308, 2, 3), model.EngineMemory())
    assert (d.desired, d.delete, d.drain, d.create) == (3, (), (), 0)
    assert d.reason is Reason.FAILED_GET_METRICS
    assert d.current_sessions is None


def test_absurd_on_every_vm_is_no_sample_never_infinity() -> None:
    d = decide.decide(NOW, _spec(), fleet(1e308, 1e308, float("inf")), model.EngineMemory())
    assert (d.desired, d.acts) == (3, False)
    assert d.current_sessions is None and d.average_sessions is None


def test_a_missing_vm_does_not_block_a_scale_up_the_others_need_alone() -> None:
    d = decide.decide(NOW, _spec(), fleet(None, 30, 30), model.EngineMemory())
    assert d.desired == 6  # 60 sessions on the reporting VMs alone, 10 per VM


bad = st.one_of(st.none(), st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 1e308, 1e6 + 1]))
good = st.integers(0, 500).map(float)


@settings(max_examples=200, deadline=None)
@given(
    readings=st.lists(st.one_of(good, bad), min_size=1, max_size=8).filter(
        lambda rs: any(observe.valid_sessions(r) is None for r in rs)
    ),
    history=st.lists(st.integers(0, 400), max_size=4),
)
def test_no_scale_in_while_any_ready_vm_has_no_valid_reading(readings: list[float | None], history: list[int]) -> None:
    """Whatever the valid readings say and whatever samples came before (a steady fleet: the samples of
    rounds at its own capacity or above), a round with an invalid or missing reading never lowers the count."""
    spec = _spec()
    current = len(readings)
    samples = tuple(model.Sample(NOW - 10 * (i + 1), float(current * 10 + h)) for i, h in enumerate(history))
    d = decide.decide(NOW, spec, fleet(*readings), model.EngineMemory(samples=samples))
    assert d.desired >= current
    assert d.current_sessions is None or math.isfinite(d.current_sessions)
