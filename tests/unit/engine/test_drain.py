"""Session-aware scale-in: who goes, who comes back, who may be deleted."""

from __future__ import annotations

import pytest

from webapp_scaler import model, webappscaling
from webapp_scaler.engine import drain

NOW = 10_000.0


def vm(
    name: str,
    phase: model.VMPhase = model.VMPhase.READY,
    *,
    sessions: float | None = 10.0,
    created: float = 0.0,
    protected: bool = False,
    draining_since: float | None = None,
) -> model.VMState:
    return model.VMState(name, phase, created, sessions=sessions, protected=protected, draining_since=draining_since)


FLEET = [
    vm("a", sessions=40, created=100),
    vm("b", sessions=5, created=200),
    vm("c", sessions=5, created=300),
    vm("d", sessions=0, created=400, protected=True),
    vm("e", sessions=None, created=500),
    vm("f", model.VMPhase.BOOTING, sessions=None, created=600),
    vm("g", model.VMPhase.DRAINING, sessions=1, created=50, draining_since=NOW - 10),
]


@pytest.mark.parametrize(
    ("order", "count", "expected"),
    [
        pytest.param("FewestSessions", 2, ("c", "b"), id="fewest-ties-newest-first"),
        pytest.param("FewestSessions", 4, ("c", "b", "a", "e"), id="unscrapable-last-protected-never"),
        pytest.param("Oldest", 2, ("a", "b"), id="oldest"),
        pytest.param("Newest", 2, ("e", "c"), id="newest"),
        pytest.param("FewestSessions", 0, (), id="none"),
    ],
)
def test_victims(order: webappscaling.ScaleInOrder, count: int, expected: tuple[str, ...]) -> None:
    assert drain.choose_drain_victims(FLEET, count, order) == expected


def test_unready_surplus_is_newest_first() -> None:
    vms = [vm("x", model.VMPhase.CLONING, created=1), vm("y", model.VMPhase.BOOTING, created=2), *FLEET]
    assert drain.choose_unready_surplus(vms, 2) == ("f", "y")


def test_a_vm_that_served_and_lost_readiness_is_drained_last_never_dropped() -> None:
    """A slow probe turns a serving VM not ready: it may hold sessions, so it is no unready surplus."""
    vms = [vm("x", model.VMPhase.BOOTING, sessions=None, created=700), vm("y", sessions=3, created=1), *FLEET[:3]]
    assert drain.choose_unready_surplus(vms, 1, served={"x"}) == ()
    assert drain.choose_drain_victims(vms, 4, served={"x"}) == ("y", "c", "b", "a")
    assert drain.choose_drain_victims(vms, 5, served={"x"}) == ("y", "c", "b", "a", "x")
    for order in ("Oldest", "Newest"):
        assert drain.choose_drain_victims(vms, 5, order, served={"x"})[-1] == "x"
    assert drain.choose_drain_victims(vms, 5) == ("y", "c", "b", "a")  # never seen ready: not a victim


@pytest.mark.parametrize(
    ("vms", "expected"),
    [
        pytest.param([vm("z", model.VMPhase.DRAINING, sessions=0, draining_since=NOW)], ("z",), id="empty"),
        pytest.param([vm("z", model.VMPhase.DRAINING, sessions=3, draining_since=NOW - 3599)], (), id="busy"),
        pytest.param(
            [vm("z", model.VMPhase.DRAINING, sessions=3, draining_since=NOW - 3600)], ("z",), id="timeout-expired"
        ),
        pytest.param([vm("z", model.VMPhase.DRAINING, sessions=None, draining_since=NOW - 60)], (), id="unknown"),
        pytest.param(
            [vm("z", model.VMPhase.DRAINING, sessions=float("nan"), draining_since=NOW - 60)], (), id="garbage"
        ),
        pytest.param([vm("z", sessions=0)], (), id="ready-empty-is-not-drained"),
    ],
)
def test_drained(vms: list[model.VMState], expected: tuple[str, ...]) -> None:
    assert drain.drained(vms, now=NOW, timeout_seconds=3600) == expected


def test_return_to_service_prefers_most_sessions_and_skips_expired() -> None:
    vms = [
        vm("p", model.VMPhase.DRAINING, sessions=3, draining_since=NOW - 60),
        vm("q", model.VMPhase.DRAINING, sessions=30, draining_since=NOW - 60),
        vm("r", model.VMPhase.DRAINING, sessions=50, draining_since=NOW - 4000),
    ]
    assert drain.choose_return_to_service(vms, 5, now=NOW, timeout_seconds=3600) == ("q", "p")
