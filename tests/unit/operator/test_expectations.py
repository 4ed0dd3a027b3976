"""Expectations: what the operator did shows in the next round even before the watch reports it."""

from __future__ import annotations

from webapp_scaler.expectations import Expectations
from webapp_scaler.model import VMPhase, VMState


def state(name: str, phase: VMPhase = VMPhase.READY) -> VMState:
    return VMState(name=name, phase=phase, created_at=0.0)


def test_created_vm_counts_until_the_index_shows_it() -> None:
    e = Expectations(ttl=30)
    e.created["shop-new"] = 100.0
    assert [(s.name, s.phase) for s in e.apply([state("shop-a")], 101.0)] == [
        ("shop-a", VMPhase.READY),
        ("shop-new", VMPhase.CLONING),
    ]
    e.apply([state("shop-a"), state("shop-new", VMPhase.CLONING)], 102.0)
    assert e.created == {}


def test_a_created_warm_vm_is_warm_not_cloning_capacity() -> None:
    e = Expectations(ttl=30)
    e.created_warm["shop-w"] = 100.0
    assert [(s.name, s.phase) for s in e.apply([state("shop-a")], 101.0)] == [
        ("shop-a", VMPhase.READY),
        ("shop-w", VMPhase.WARM),
    ]
    e.apply([state("shop-a"), state("shop-w", VMPhase.WARM)], 102.0)
    assert e.created_warm == {}


def test_deleted_vm_disappears_at_once_and_the_entry_goes_with_it() -> None:
    e = Expectations()
    e.deleted["shop-a"] = 100.0
    assert e.apply([state("shop-a"), state("shop-b")], 101.0) == [state("shop-b")]
    assert e.apply([state("shop-b")], 102.0) == [state("shop-b")]
    assert e.deleted == {}


def test_drain_start_and_return_override_until_seen() -> None:
    e = Expectations()
    e.draining["shop-a"] = 100.0
    e.started["shop-w"] = 100.0
    [a, w] = e.apply([state("shop-a"), state("shop-w", VMPhase.WARM)], 101.0)
    assert (a.phase, a.draining_since) == (VMPhase.DRAINING, 100.0)
    assert (w.phase, w.started_at) == (VMPhase.STARTING, 100.0)
    e.returned["shop-a"] = 102.0
    e.draining.clear()
    [a] = e.apply([VMState(name="shop-a", phase=VMPhase.DRAINING, created_at=0, draining_since=100.0)], 103.0)
    assert (a.phase, a.draining_since) == (VMPhase.READY, None)


def test_entries_expire_so_the_cluster_wins_again() -> None:
    e = Expectations(ttl=30)
    e.created["ghost"] = 100.0
    assert [s.name for s in e.apply([], 131.0)] == []
