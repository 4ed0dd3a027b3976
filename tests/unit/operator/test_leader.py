"""Leader election on a Lease (webapp_scaler.leader), ported from client-go's
tools/leaderelection/leaderelection.go and resourcelock/leaselock.go: the pure decision from a record and
the observer's own clock, then the elector and the standalone claim against an in-memory Lease with
resourceVersion conflicts (as the apiserver answers) and a fake clock, so hours of lease time take none."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from webapp_scaler import leader
from webapp_scaler.leader import (
    Conflict,
    Decision,
    Lease,
    LeaseRecord,
    Observed,
    Timings,
    claimed,
    decide,
    lease_valid,
    observe,
    released,
    scope_of,
    scopes_overlap,
    standalone_conflict,
)

TIMINGS = Timings()  # client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period
T0 = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def record(holder: str = "a", *, renewed: datetime = T0, transitions: int = 0, duration: int = 15) -> LeaseRecord:
    return LeaseRecord(holder, duration, T0, renewed, transitions)


# ---- the pure decision -----------------------------------------------------------------------------------


def test_the_observation_time_moves_only_when_the_record_changes() -> None:
    first = observe(None, record(), now=100.0)
    assert first == Observed(record(), 100.0)
    assert observe(first, record(), now=130.0) is first  # the same record seen later: still seen at 100
    renewed = observe(first, record(renewed=T0 + timedelta(seconds=2)), now=131.0)
    assert renewed.at == 131.0


@pytest.mark.parametrize(
    ("holder", "seen_at", "now", "expected"),
    [
        ("me", 0.0, 1000.0, Decision.RENEW),  # ours, however old
        ("", 100.0, 100.0, Decision.TAKE),  # released: taken at once
        ("other", 100.0, 114.9, Decision.WAIT),  # unchanged for less than leaseDurationSeconds
        ("other", 100.0, 115.0, Decision.TAKE),  # unchanged for the whole lease duration: expired
    ],
)
def test_decide(holder: str, seen_at: float, now: float, expected: Decision) -> None:
    assert decide(Observed(record(holder), seen_at), "me", now) is expected


def test_no_lease_is_created() -> None:
    assert decide(None, "me", 0.0) is Decision.CREATE


def test_expiry_is_judged_by_the_observers_clock_never_by_renew_time() -> None:
    """A renewTime of long ago (the holder's wall clock is behind ours, say) does not make the lease
    expired: only an unchanged record for a lease duration on our own clock does. And a renewTime in the
    future (a clock ahead) does not keep a dead holder's lease alive."""
    ancient = Observed(record("other", renewed=datetime(2000, 1, 1, tzinfo=UTC)), at=100.0)
    assert lease_valid(ancient, 101.0) and decide(ancient, "me", 101.0) is Decision.WAIT
    future = Observed(record("other", renewed=datetime(2100, 1, 1, tzinfo=UTC)), at=100.0)
    assert not lease_valid(future, 116.0) and decide(future, "me", 116.0) is Decision.TAKE


def test_claimed_renews_a_term_or_starts_a_new_one() -> None:
    later = T0 + timedelta(seconds=30)
    assert claimed(None, "me", 15, T0) == LeaseRecord("me", 15, T0, T0, 0)
    own = LeaseRecord("me", 15, T0, T0, 4)
    assert claimed(own, "me", 15, later) == LeaseRecord("me", 15, T0, later, 4)  # acquireTime kept
    assert claimed(record("other", transitions=4), "me", 15, later) == LeaseRecord("me", 15, later, later, 5)


def test_released_clears_the_holder_and_keeps_the_transitions() -> None:
    later = T0 + timedelta(seconds=30)
    assert released(record("me", transitions=3), later) == LeaseRecord("", 1, later, later, 3)


def test_timings_are_checked_as_client_go_checks_them() -> None:
    with pytest.raises(ValueError, match="longer than the renew deadline"):
        Timings(lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError, match=r"1.2 × the retry period"):
        Timings(lease_duration=15, renew_deadline=2, retry_period=2)
    with pytest.raises(ValueError, match="positive"):
        Timings(lease_duration=15, renew_deadline=10, retry_period=0)
    with pytest.raises(ValueError, match="whole seconds"):
        Timings(lease_duration=15.5, renew_deadline=10, retry_period=2)


def test_the_lease_namespace_is_the_pods(tmp_path: Path) -> None:
    account = tmp_path / "namespace"
    assert leader.default_namespace({"POD_NAMESPACE": "ops"}, account) == "ops"
    assert leader.default_namespace({}, account) == "webapp-scaler"  # no service account: outside a pod
    account.write_text("platform\n")
    assert leader.default_namespace({}, account) == "platform"


def test_identities_differ_even_on_one_host() -> None:
    assert leader.default_identity() != leader.default_identity()


def test_scopes() -> None:
    assert scope_of([]) == "*"
    assert scope_of(["b", "a", "b"]) == "a,b"
    assert scopes_overlap("*", "a") and scopes_overlap("a,b", "b,c")
    assert not scopes_overlap("a", "b,c")


def test_standalone_conflict_needs_a_write_by_another_after_ours() -> None:
    mine = Lease(record("me"), "1", "*")
    theirs = Lease(record("other", renewed=T0 + timedelta(seconds=1)), "2", "*")
    assert not standalone_conflict(theirs, None, "me", "*")  # a stale claim found at start-up
    assert not standalone_conflict(mine, mine, "me", "*")  # only our own claim
    assert standalone_conflict(theirs, mine, "me", "*")
    assert not standalone_conflict(replace(theirs, standalone_scope="shop"), mine, "me", "blog")
    assert standalone_conflict(replace(theirs, standalone_scope=None), mine, "me", "blog")  # a leader acts everywhere
    assert not standalone_conflict(replace(theirs, record=record("")), mine, "me", "*")  # released


# ---- the elector against an in-memory Lease ------------------------------------------------------------


class FakeClock:
    """Monotonic seconds; `sleep` advances them at once. The wall clock may be skewed per replica."""

    def __init__(self, now: float = 1000.0, skew: float = 0.0) -> None:
        self.now, self.skew = now, skew

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.now + self.skew)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Store:
    """One Lease as the apiserver keeps it: every write needs the current resourceVersion."""

    lease: Lease | None = None
    version: int = 0
    events: list[str] = field(default_factory=list)

    def write(self, lease: Lease | None, rec: LeaseRecord, scope: str | None) -> Lease:
        if (lease is None) != (self.lease is None):
            raise Conflict("exists" if lease is None else "gone")
        if lease is not None and self.lease is not None and lease.resource_version != self.lease.resource_version:
            raise Conflict("stale resourceVersion")
        self.version += 1
        self.lease = Lease(rec, str(self.version), scope)
        return self.lease


@dataclass
class FakeLock:
    store: Store
    identity: str
    broken: bool = False  # every request fails (the apiserver unreachable from this replica)

    def describe(self) -> str:
        return "webapp-scaler/webapp-scaler"

    def _check(self) -> None:
        if self.broken:
            raise ConnectionError("apiserver unreachable")

    async def get(self, request_timeout: float) -> Lease | None:
        self._check()
        return self.store.lease

    async def create(self, rec: LeaseRecord, standalone_scope: str | None, request_timeout: float) -> Lease:
        self._check()
        return self.store.write(None, rec, standalone_scope)

    async def update(
        self, lease: Lease, rec: LeaseRecord, standalone_scope: str | None, request_timeout: float
    ) -> Lease:
        self._check()
        return self.store.write(lease, rec, standalone_scope)

    async def event(self, reason: str, message: str) -> None:
        self.store.events.append(f"{self.identity} {message}")


def elector(store: Store, identity: str, clock: FakeClock, timings: Timings = TIMINGS) -> leader.LeaderElector:
    return leader.LeaderElector(FakeLock(store, identity), identity, timings, clock)  # type: ignore[arg-type]


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_one_candidate_leads_the_other_waits_then_takes_over_a_lease_duration_after_the_last_renewal() -> None:
    store, clock = Store(), FakeClock()
    a, b = elector(store, "a", clock), elector(store, "b", FakeClock(skew=-3600))  # b's wall clock: an hour behind
    assert await a.try_acquire_or_renew()
    assert store.lease is not None and store.lease.record.holder == "a" and store.lease.record.transitions == 0
    b.clock.now = clock.now
    assert not await b.try_acquire_or_renew()  # held, just renewed
    for _ in range(10):  # a renews every retry period: b never takes it, however long
        clock.now += 2
        b.clock.now = clock.now
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    # a stops renewing (killed): b takes the lease once it has seen no change for the lease duration
    last_change = clock.now
    b.clock.now = last_change + 14
    assert not await b.try_acquire_or_renew()
    b.clock.now = last_change + 15.5
    assert await b.try_acquire_or_renew()
    assert store.lease.record.holder == "b" and store.lease.record.transitions == 1
    # a, back from a pause, must not renew over b: its fast path meets a conflict, the record says b
    clock.now = b.clock.now
    assert not await a.try_acquire_or_renew()
    assert a.holder == "b"


async def test_of_two_candidates_taking_an_expired_lease_the_apiserver_lets_one_win() -> None:
    store, clock = Store(), FakeClock()
    assert await elector(store, "dead", clock).try_acquire_or_renew()
    b, c = elector(store, "b", clock), elector(store, "c", clock)
    assert not await b.try_acquire_or_renew() and not await c.try_acquire_or_renew()
    clock.now += 16
    stale = store.lease  # both read this version; b writes first
    assert stale is not None
    assert await b.try_acquire_or_renew()
    with pytest.raises(Conflict):
        await FakeLock(store, "c").update(stale, claimed(stale.record, "c", 15, clock.wall()), None, 1)
    assert not await c.try_acquire_or_renew()  # c reads again: b's fresh record, valid
    assert store.lease.record.holder == "b"


async def test_a_leader_that_cannot_renew_stops_within_the_renew_deadline_before_the_lease_expires() -> None:
    store, clock = Store(), FakeClock()
    a = elector(store, "a", clock)
    assert await a.acquire()
    assert gauge("webapp_scaler_leader") == 1
    assert store.events == ["a became leader"]
    acquired_at = a.renewed_at

    async def cut_off_after_three_renewals() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        while clock.now < acquired_at + 3 * TIMINGS.retry_period:  # noqa: ASYNC110  (a fake clock: no event to await)
            await asyncio.sleep(0)
        a.lock.broken = True  # type: ignore[attr-defined]

    cutter = asyncio.ensure_future(cut_off_after_three_renewals())
    await asyncio.wait_for(a.hold(), 5)
    await cutter
    last_renewal = store.lease.record.renew_time if store.lease else None
    assert last_renewal is not None
    stopped = clock.now - acquired_at
    renewed = (last_renewal - T0).total_seconds() - acquired_at
    assert stopped - renewed <= TIMINGS.renew_deadline + 1e-9  # never acted a renew deadline past a renewal
    assert stopped - renewed < TIMINGS.lease_duration  # so before anyone may take over
    assert stopped - renewed >= TIMINGS.renew_deadline - TIMINGS.retry_period  # and it did keep trying
    assert gauge("webapp_scaler_leader") == 0
    assert store.events == ["a became leader", "a lost leadership"]


async def test_a_leader_stops_at_once_when_it_reads_another_holder() -> None:
    store, clock = Store(), FakeClock()
    a = elector(store, "a", clock)
    assert await a.acquire()
    assert store.lease is not None
    store.write(store.lease, claimed(store.lease.record, "intruder", 15, clock.wall()), None)
    started = clock.now
    await asyncio.wait_for(a.hold(), 5)
    assert clock.now - started <= TIMINGS.retry_period  # the first renewal finds it
    assert not a.leading and a.holder == "intruder"


async def test_release_lets_a_standby_take_over_at_once() -> None:
    store, clock = Store(), FakeClock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    assert store.lease is not None and store.lease.record.holder == "" and store.lease.record.duration_seconds == 1
    assert await b.try_acquire_or_renew()  # no lease duration to wait
    assert store.lease.record.holder == "b" and store.lease.record.transitions == 1
    assert not await a.release()  # no longer ours: left alone
    assert store.lease.record.holder == "b"


async def test_acquire_waits_until_stopped() -> None:
    store, clock = Store(), FakeClock()
    assert await elector(store, "a", clock).try_acquire_or_renew()
    stop = asyncio.Event()
    b = elector(store, "b", clock)
    waiting = asyncio.ensure_future(b.acquire(stop))
    while clock.now < 1010:  # noqa: ASYNC110  (a few retry periods of waiting, on a fake clock)
        await asyncio.sleep(0)
    assert not waiting.done()
    stop.set()
    assert await asyncio.wait_for(waiting, 5) is False
    assert not b.leading


async def test_a_hung_request_cannot_keep_a_leader_past_the_renew_deadline() -> None:
    """Real time: the renewal hangs (a network partition) and the leader must give up by the renew deadline,
    well before the lease duration after which a standby may take over. Not asserted tighter than the lease
    duration: the machine is shared and noisy."""
    timings = Timings(lease_duration=4, renew_deadline=2, retry_period=0.5)
    store = Store()
    lock = FakeLock(store, "a")
    a = leader.LeaderElector(lock, "a", timings)  # type: ignore[arg-type]
    assert await a.acquire()

    async def hang(*_: object) -> Lease:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    lock.update = hang  # type: ignore[method-assign]
    lock.get = hang  # type: ignore[method-assign, assignment]
    started = time.monotonic()
    await asyncio.wait_for(a.hold(), 30)
    assert time.monotonic() - a.renewed_at < timings.lease_duration
    assert time.monotonic() - started >= timings.renew_deadline - timings.retry_period - 0.1


# ---- standalone operators --------------------------------------------------------------------------------


def claim(store: Store, identity: str, scope: str, clock: FakeClock) -> leader.StandaloneClaim:
    return leader.StandaloneClaim(FakeLock(store, identity), identity, scope, TIMINGS, clock)  # type: ignore[arg-type]


async def test_two_standalone_operators_on_one_scope_report_each_other() -> None:
    store, clock = Store(), FakeClock()
    a, b = claim(store, "a", "*", clock), claim(store, "b", "shop", clock)
    assert not await a.step()  # nobody else yet
    assert not await b.step()  # a's claim was there before b's first: no proof a is alive yet
    assert gauge("webapp_scaler_standalone_conflict") == 0
    clock.now += 2
    assert await a.step()  # b wrote after a's claim
    assert await b.step()
    assert a.in_conflict and b.in_conflict and a.other == "b" and b.other == "a"
    assert gauge("webapp_scaler_standalone_conflict") == 1
    # b goes away after that write, which a still sees; a lease duration later a reports no conflict
    clock.now += 2
    assert await a.step()
    for _ in range(8):
        clock.now += 2
        assert not await a.step()
    assert not a.in_conflict
    assert gauge("webapp_scaler_standalone_conflict") == 0


async def test_standalone_operators_on_disjoint_namespaces_are_no_conflict() -> None:
    store, clock = Store(), FakeClock()
    a, b = claim(store, "a", "blog", clock), claim(store, "b", "shop", clock)
    for _ in range(5):
        clock.now += 2
        assert not await a.step() and not await b.step()


async def test_a_dead_standalone_operators_claim_is_no_conflict() -> None:
    store, clock = Store(), FakeClock()
    assert not await claim(store, "old-pod", "*", clock).step()
    new = claim(store, "new-pod", "*", clock)
    for _ in range(3):
        clock.now += 2
        assert not await new.step()
    assert store.lease is not None and store.lease.record.holder == "new-pod"


async def test_leader_elected_replicas_wait_while_a_standalone_operator_claims_the_lease() -> None:
    store, clock = Store(), FakeClock()
    standalone = claim(store, "s", "*", clock)
    candidate = elector(store, "c", clock)
    for _ in range(20):
        assert not await standalone.step()
        assert not await candidate.try_acquire_or_renew()
        clock.now += 2
