"""How per-VM counts become one demand sample: missing, garbage, unready and draining VMs."""

from __future__ import annotations

import pytest

from webapp_scaler import model
from webapp_scaler.engine import observe

R, D, B, C, W = (
    model.VMPhase.READY,
    model.VMPhase.DRAINING,
    model.VMPhase.BOOTING,
    model.VMPhase.CLONING,
    model.VMPhase.WARM,
)


def fleet(*vms: tuple[model.VMPhase, float | None]) -> list[model.VMState]:
    return [model.VMState(f"vm-{i}", phase, 0.0, sessions=s) for i, (phase, s) in enumerate(vms)]


@pytest.mark.parametrize(
    ("vms", "current", "expected"),
    [
        pytest.param(fleet((R, 50), (R, 70)), 2, 120.0, id="all-reporting"),
        pytest.param(fleet((R, 50), (R, 70), (B, None), (C, None)), 4, 120.0, id="booting-count-zero"),
        pytest.param(fleet((R, 50), (D, 30)), 1, 80.0, id="draining-sessions-count"),
        pytest.param(fleet((R, 50), (D, None)), 1, 50.0, id="unscrapable-draining-counts-zero"),
        pytest.param(fleet((R, 20), (R, 20), (R, None)), 3, None, id="missing-never-scales-in"),
        pytest.param(fleet((R, 150), (R, 150), (R, None)), 3, 300.0, id="missing-as-zero-on-scale-up"),
        pytest.param(fleet((R, 100), (R, None)), 2, None, id="up-only-if-the-missing-vm-were-full-so-hold"),
        pytest.param(fleet((R, 100), (R, None), (D, 50)), 2, None, id="draining-sessions-are-no-scale-up"),
        pytest.param(fleet((R, 200), (R, None), (D, 50)), 2, 250.0, id="over-target-without-the-missing-vm"),
        pytest.param(fleet((R, 250), (R, None), (B, None)), 3, 250.0, id="booting-vm-is-not-missing"),
        pytest.param(fleet((R, -5), (R, 40)), 2, None, id="negative-is-missing"),
        pytest.param(fleet((R, 1e308), (R, 40)), 2, None, id="absurd-is-missing"),
        pytest.param(fleet((R, 1e308), (R, 1e308)), 2, None, id="absurd-everywhere-is-no-sample-never-inf"),
        pytest.param(fleet((R, float("nan")), (R, 40)), 2, None, id="nan-is-missing"),
        pytest.param(fleet((R, float("inf")), (R, 200)), 2, 200.0, id="inf-is-missing"),
        pytest.param(fleet((B, None), (W, None)), 1, 0.0, id="nothing-ready-is-zero"),
    ],
)
def test_sample(vms: list[model.VMState], current: int, expected: float | None) -> None:
    sessions = observe.observe(vms, target_per_vm=80.0, current=current).sessions
    assert sessions == (None if expected is None else pytest.approx(expected))


def test_all_ready_vms_missing_gives_no_sample() -> None:
    seen = observe.observe(fleet((R, None), (R, float("nan")), (D, 12)), target_per_vm=80.0, current=2)
    assert seen.sessions is None
    assert seen.missing == 2
