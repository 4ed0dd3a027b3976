"""Properties over arbitrary fleets and histories: bounds, no session cut before its drain timeout,
determinism."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_scaler import model, webappscaling
from webapp_scaler.engine import decide

NOW = 50_000.0
GARBAGE = st.sampled_from([None, -3.0, math.nan, math.inf])
SESSIONS = st.one_of(st.floats(min_value=0, max_value=2_000, allow_nan=False), GARBAGE)


@st.composite
def vms(draw: st.DrawFn) -> list[model.VMState]:
    count = draw(st.integers(0, 25))
    out = []
    for i in range(count):
        phase = draw(st.sampled_from(list(model.VMPhase)))
        created = NOW - draw(st.floats(0, 20_000))
        draining_since = NOW - draw(st.floats(0, 8_000)) if phase is model.VMPhase.DRAINING else None
        out.append(
            model.VMState(
                f"vm-{i}",
                phase,
                created,
                ready_at=created + 90 if draw(st.booleans()) else None,
                draining_since=draining_since,
                protected=draw(st.booleans()),
                sessions=draw(SESSIONS),
            )
        )
    return out


@st.composite
def specs(draw: st.DrawFn) -> webappscaling.ScalingSpec:
    low = draw(st.integers(0, 10))
    raw = {
        "mode": draw(st.sampled_from(["Sessions", "Sessions", "External"])),
        "replicas": {"min": low, "max": max(1, low) + draw(st.integers(0, 30)), "desired": draw(st.integers(0, 60))},
        "sessions": {
            "targetPerVM": draw(st.floats(1, 200)),
            "movingAverage": {"kind": draw(st.sampled_from(["Simple", "Exponential"]))},
        },
        "behavior": {"tolerance": draw(st.floats(0, 0.5))},
        "scaleIn": {"drain": {"timeoutSeconds": draw(st.integers(0, 7200))}},
        "warmPool": {"size": draw(st.integers(0, 3))},
        "prediction": {"enabled": draw(st.booleans())},
    }
    return webappscaling.ScalingSpec.from_spec(raw)


def run(spec: webappscaling.ScalingSpec, history: list[list[model.VMState]]) -> list[model.Decision]:
    memory = model.EngineMemory()
    out = []
    for step, fleet in enumerate(history):
        d = decide.decide(NOW + 15 * step, spec, fleet, memory)
        memory = d.memory
        out.append(d)
    return out


@settings(max_examples=150, deadline=None)
@given(spec=specs(), history=st.lists(vms(), min_size=1, max_size=5))
def test_desired_stays_within_min_and_max(spec: webappscaling.ScalingSpec, history: list[list[model.VMState]]) -> None:
    for d in run(spec, history):
        assert spec.replicas.min <= d.desired <= spec.replicas.max


@settings(max_examples=150, deadline=None)
@given(spec=specs(), history=st.lists(vms(), min_size=1, max_size=5))
def test_no_vm_with_sessions_is_deleted_before_its_drain_timeout(
    spec: webappscaling.ScalingSpec, history: list[list[model.VMState]]
) -> None:
    timeout = spec.scale_in.drain.timeout_seconds
    for step, (fleet, d) in enumerate(zip(history, run(spec, history), strict=True)):
        now = NOW + 15 * step
        by_name = {vm.name: vm for vm in fleet}
        for name in d.delete:
            vm = by_name[name]
            assert vm.phase is not model.VMPhase.READY
            if vm.phase is model.VMPhase.DRAINING:
                assert vm.sessions == 0 or now - (vm.draining_since or now) >= timeout
        assert not set(d.delete) & set(d.drain)
        assert not set(d.delete) & set(d.return_to_service)


@settings(max_examples=60, deadline=None)
@given(spec=specs(), history=st.lists(vms(), min_size=1, max_size=4))
def test_same_inputs_same_decisions(spec: webappscaling.ScalingSpec, history: list[list[model.VMState]]) -> None:
    first = run(spec, history)
    second = run(spec, history)
    assert [(d.desired, d.create, d.start, d.drain, d.delete, d.message) for d in first] == [
        (d.desired, d.create, d.start, d.drain, d.delete, d.message) for d in second
    ]
