"""Whole decisions, worked by hand: the actions that follow from a count, and the reason given."""

from __future__ import annotations

from typing import Any

from webapp_scaler import model, webappscaling
from webapp_scaler.constants import Reason
from webapp_scaler.engine import decide

NOW = 100_000.0
R, D, W, B, F = (
    model.VMPhase.READY,
    model.VMPhase.DRAINING,
    model.VMPhase.WARM,
    model.VMPhase.BOOTING,
    model.VMPhase.FAILED,
)
EMPTY = model.EngineMemory()


def spec(**fields: Any) -> webappscaling.ScalingSpec:
    raw: dict[str, Any] = {"replicas": {"min": 1, "max": 50}, "prediction": {"enabled": False}}
    raw.update(fields)
    return webappscaling.ScalingSpec.from_spec(raw)


def vm(name: str, phase: model.VMPhase = R, sessions: float | None = None, **kw: Any) -> model.VMState:
    return model.VMState(name, phase, kw.pop("created_at", 0.0), sessions=sessions, **kw)


def test_scale_up_clones_and_explains() -> None:
    vms = [vm(f"vm-{i}", sessions=137) for i in range(3)]
    d = decide.decide(NOW, spec(), vms, EMPTY)
    assert (d.desired, d.create, d.start, d.drain, d.delete) == (6, 3, (), (), ())
    assert d.reason is Reason.DESIRED_WITHIN_RANGE
    expected = "scaled up 3→6: 120 s simple average 411 sessions > 3 VMs × 80 target (+71 %)"
    assert d.message.startswith(expected)
    assert d.memory.scale_up_events == (model.ScaleEvent(NOW, 3),)


def test_scale_up_is_rate_limited() -> None:
    vms = [vm("vm-0", sessions=800)]
    d = decide.decide(NOW, spec(), vms, EMPTY)
    assert (d.desired, d.create, d.reason) == (5, 4, Reason.SCALE_UP_LIMIT)


def test_draining_vms_come_back_before_warm_vms_start_before_clones() -> None:
    vms = [
        vm("a", sessions=150),
        vm("b", sessions=150),
        vm("old", D, sessions=20, draining_since=NOW - 100),
        vm("w1", W, created_at=10.0),
        vm("w2", W, created_at=5.0),
    ]
    d = decide.decide(NOW, spec(warmPool={"size": 2}), vms, EMPTY)
    # 320 sessions, 20 of them staying on the draining VM: 300 for the active VMs → 4 VMs.
    assert d.desired == 4
    assert d.return_to_service == ("old",)
    assert d.start == ("w2",)
    assert d.create == 0
    assert d.create_warm == 1


def test_scale_down_drains_the_fewest_sessions_first_and_deletes_unready_first() -> None:
    vms = [
        vm("a", sessions=10),
        vm("b", sessions=5),
        vm("c", sessions=30),
        vm("d", sessions=20),
        vm("booting", B, created_at=NOW - 30),
    ]
    no_window = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    d = decide.decide(NOW, spec(behavior=no_window), vms, EMPTY)
    assert d.desired == 1
    assert d.delete == ("booting",)
    assert d.drain == ("b", "a", "d")


def test_a_vm_that_lost_readiness_after_serving_is_drained_not_deleted() -> None:
    """Round 1 sees `flap` Ready; in round 2 its probe fails (Booting again) as the count drops: the engine
    drains it — it may hold users — instead of deleting it as a VM that never booted."""
    no_window = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    first = decide.decide(
        NOW,
        spec(behavior=no_window, replicas={"min": 2, "max": 2}),
        [vm("a", sessions=1), vm("flap", sessions=1)],
        EMPTY,
    )
    assert first.delete == () and "flap" in first.memory.measured
    vms = [vm("a", sessions=1), vm("flap", B)]
    d = decide.decide(NOW + 1, spec(behavior=no_window, replicas={"min": 1, "max": 1}), vms, first.memory)
    assert d.desired == 1
    assert d.delete == ()
    assert d.drain == ("a",)  # the Ready VM first; the one that lost readiness only when more must go
    fresh = decide.decide(NOW + 1, spec(behavior=no_window, replicas={"min": 1, "max": 1}), vms, EMPTY)
    assert fresh.delete == ("flap",)  # without the memory it is indistinguishable from a booting clone


def test_scale_down_waits_for_the_stabilization_window() -> None:
    vms = [vm(f"vm-{i}", sessions=75) for i in range(4)]
    s = spec(sessions={"movingAverage": {"windowSeconds": 0}})
    memory = decide.decide(NOW - 30, s, vms, EMPTY).memory
    quiet = [vm(f"vm-{i}", sessions=10) for i in range(4)]
    d = decide.decide(NOW, s, quiet, memory)
    assert (d.desired, d.drain, d.reason) == (4, (), Reason.SCALE_DOWN_STABILIZED)
    later = decide.decide(NOW + 30, s, quiet, d.memory)
    assert later.desired == 1
    assert len(later.drain) == 3


def test_without_drain_the_victims_are_deleted() -> None:
    vms = [vm("a", sessions=10), vm("b", sessions=5)]
    s = spec(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}}, scaleIn={"drain": {"enabled": False}})
    d = decide.decide(NOW, s, vms, EMPTY)
    assert (d.desired, d.drain, d.delete) == (1, (), ("b",))


def test_drained_and_failed_vms_are_deleted_and_replaced() -> None:
    vms = [
        vm("a", sessions=70),
        vm("empty", D, sessions=0, draining_since=NOW - 30),
        vm("late", D, sessions=4, draining_since=NOW - 3600),
        vm("busy", D, sessions=4, draining_since=NOW - 60),
        vm("broken", F),
    ]
    d = decide.decide(NOW, spec(replicas={"min": 2, "max": 5}), vms, EMPTY)
    assert set(d.delete) == {"broken", "empty", "late"}
    assert d.return_to_service == ("busy",)  # the count is below min=2: the ready draining VM comes back


def test_missing_metrics_hold_the_count() -> None:
    vms = [vm("a", sessions=None), vm("b", sessions=float("nan")), vm("gone", D, sessions=0, draining_since=NOW)]
    d = decide.decide(NOW, spec(), vms, EMPTY)
    assert (d.desired, d.create, d.drain) == (2, 0, ())
    assert d.delete == ("gone",)
    assert d.reason is Reason.FAILED_GET_METRICS
    assert d.average_sessions is None


def test_paused_does_nothing_but_still_averages() -> None:
    vms = [vm("a", sessions=500), vm("empty", D, sessions=0, draining_since=NOW)]
    d = decide.decide(NOW, spec(paused=True), vms, EMPTY)
    assert (d.desired, d.acts, d.reason) == (1, False, Reason.PAUSED)
    assert d.average_sessions == 500


def test_external_mode_follows_the_scale_subresource() -> None:
    vms = [vm("a", sessions=500), vm("b", sessions=0)]
    d = decide.decide(NOW, spec(mode="External", replicas={"min": 1, "max": 10, "desired": 1}), vms, EMPTY)
    assert (d.desired, d.drain, d.reason) == (1, ("b",), Reason.EXTERNAL)


def test_prediction_provisions_ahead_of_a_ramp() -> None:
    with_prediction = spec(prediction={"enabled": True})
    without = spec()
    memories = {"on": EMPTY, "off": EMPTY}
    for step in range(8):
        vms = [vm(f"vm-{i}", sessions=70 + 3 * step) for i in range(10)]
        on = decide.decide(NOW + 15 * step, with_prediction, vms, memories["on"])
        off = decide.decide(NOW + 15 * step, without, vms, memories["off"])
        memories = {"on": on.memory, "off": off.memory}
    assert on.forecast_sessions is not None and on.average_sessions is not None
    assert on.forecast_sessions > on.average_sessions
    assert on.desired > off.desired


def test_boot_time_is_measured_from_clones_only() -> None:
    vms = [
        vm("a", sessions=10, created_at=NOW - 500, ready_at=NOW - 380),
        vm("w", sessions=10, created_at=NOW - 9000, started_at=NOW - 100, ready_at=NOW - 60),
    ]
    d = decide.decide(NOW, spec(), vms, EMPTY)
    assert d.memory.boot_seconds == (120.0,)
    assert d.memory.measured == frozenset({"a", "w"})
    assert decide.boot_estimate(d.memory) == 120.0
    again = decide.decide(NOW + 15, spec(), vms, d.memory)
    assert again.memory.boot_seconds == (120.0,)


def test_a_restarted_operator_remembers_the_rate_limit_from_the_vms_it_just_created() -> None:
    """4 VMs allowed per 60 s; 4 cloned 10 s ago, then the operator restarted (empty memory): the demand
    asks for 7 more, the policy allows none until the period is over — not 3 more at once."""
    up = {"scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "VMs", "value": 4, "periodSeconds": 60}]}}
    fleet = [vm(f"old{i}", sessions=80.0, created_at=NOW - 3600) for i in range(3)]
    fleet += [vm(f"new{i}", B, created_at=NOW - 10) for i in range(4)]
    busy = spec(behavior=up, sessions={"targetPerVM": 10})
    d = decide.decide(NOW, busy, fleet, EMPTY)
    assert d.create == 0 and d.desired == 7
    later = decide.decide(NOW + 51, busy, fleet, d.memory)
    assert later.create == 4  # the period of the four is over


def test_a_restarted_operator_remembers_the_drains_it_just_began() -> None:
    """One removal allowed per 60 s, one drain begun 5 s ago: after a restart no second drain yet."""
    down = {
        "scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "VMs", "value": 1, "periodSeconds": 60}]}
    }
    fleet = [vm(n, sessions=1.0, created_at=NOW - 3600) for n in "abc"]
    fleet.append(vm("d", model.VMPhase.DRAINING, sessions=1.0, created_at=NOW - 3600, draining_since=NOW - 5))
    d = decide.decide(NOW, spec(behavior=down), fleet, EMPTY)
    assert d.drain == ()
    assert decide.decide(NOW + 56, spec(behavior=down), fleet, d.memory).drain != ()


def test_the_fallback_takes_over_after_the_threshold_and_never_scales_in() -> None:
    """No Ready VM gives a valid count: the count is held for failureThreshold rounds, then the fallback's
    replicas are the demand (KEDA's fallback) — upwards only."""
    fb = spec(
        sessions={"fallback": {"failureThreshold": 2, "replicas": 5}},
        behavior={"scaleUp": {"stabilizationWindowSeconds": 0}},
    )
    fleet = [vm("a"), vm("b")]  # Ready, no sessions: no valid reading
    memory = EMPTY
    for i in range(2):
        d = decide.decide(NOW + i, fb, fleet, memory)
        assert d.desired == 2 and d.create == 0, i
        memory = d.memory
    d = decide.decide(NOW + 2, fb, fleet, memory)
    assert d.memory.failed_rounds == 3
    assert d.desired == 5 and "fallback" in d.message
    shrink = spec(sessions={"fallback": {"failureThreshold": 1, "replicas": 1}})
    many = [vm(n) for n in "abcd"]
    held = decide.decide(NOW + 1, shrink, many, decide.decide(NOW, shrink, many, EMPTY).memory)
    assert held.memory.failed_rounds == 2 and held.desired == 4  # a fallback below the count: held


def test_a_missing_vm_never_lets_older_low_samples_average_into_a_scale_in() -> None:
    """Low samples, then one VM's agent breaks while the other is busy: the average is still below the
    target of the fleet, but with a VM missing nothing is drained."""
    no_window = spec(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}}, sessions={"targetPerVM": 10})
    memory = EMPTY
    for i in range(5):
        memory = decide.decide(NOW + i * 15, no_window, [vm(n, sessions=1.0) for n in "abcd"], memory).memory
    broken = [vm("a", sessions=35.0), vm("b"), vm("c", sessions=1.0), vm("d", sessions=1.0)]
    d = decide.decide(NOW + 75, no_window, broken, memory)
    assert d.drain == () and d.desired >= 4
