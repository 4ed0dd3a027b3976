"""Leader election on a `coordination.k8s.io/v1` Lease, so that of several operator replicas exactly one
acts, and another takes over within the lease duration when it goes.

Ported from client-go's `tools/leaderelection/leaderelection.go` (`tryAcquireOrRenew`, `renew`,
`release`, `isLeaseValid`, `setObservedRecord`) and `tools/leaderelection/resourcelock/leaselock.go`
(the Lease as the lock: get, create, update with the resourceVersion read). The rules kept from there:

- The lease record is `holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime` and
  `leaseTransitions`. A candidate never compares `renewTime` with its own wall clock (the replicas' clocks
  may disagree): it notes, on its own monotonic clock, when it last *saw the record change*, and takes the
  lease only once `leaseDurationSeconds` have passed since then without a change (or when the holder is
  empty, after a release).
- Every write is an update with the resourceVersion read (optimistic concurrency): of two candidates
  taking an expired lease at once, the apiserver lets one win and answers the other 409.
- The leader renews every retry period; when it has not renewed within the renew deadline (shorter than
  the lease duration, so it stops before anyone may take over), it has lost the lease.
- On a clean shutdown the leader releases the lease (holder cleared, duration 1 s) so a standby takes
  over at once instead of after the lease duration.

Stricter than client-go in one point: a leader that reads another holder in the record stops at once
instead of retrying until the renew deadline, since the record says someone else may act now.

What the process does with leadership (wait, act, exit) is `webapp_scaler.runner`'s business; this
module only keeps the lease. `StandaloneClaim` is the other half: an operator run with `--standalone`
does not coordinate, but it writes the same Lease as a claim every retry period, so a second standalone
operator on an overlapping scope is noticed and reported (log and metric), and leader-elected replicas
wait while a standalone operator acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from webapp_scaler import telemetry
from webapp_scaler.constants import GROUP

logger = logging.getLogger("webapp_scaler.leader")

JITTER_FACTOR = 1.2  # client-go's JitterFactor: candidates poll every retry period * (1 + up to 1.2)
ANNOTATION_STANDALONE = f"{GROUP}/standalone-scope"  # on a standalone claim: the namespaces it watches
CLUSTER_SCOPE = "*"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "webapp-scaler"


class Conflict(Exception):
    """The Lease changed since it was read (HTTP 409), or it was created meanwhile."""


# ---- the pure part: the lease record, what an observer saw, and the decision --------------------------


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """client-go's `LeaderElectionRecord`, as a Lease's spec holds it."""

    holder: str  # "" once released
    duration_seconds: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int


@dataclass(frozen=True, slots=True)
class Lease:
    """A Lease as read: its record, the resourceVersion to update it with, and the scope of a standalone
    operator's claim (None: a leader election record)."""

    record: LeaseRecord
    resource_version: str
    standalone_scope: str | None = None


@dataclass(frozen=True, slots=True)
class Observed:
    """The last record seen and when (the observer's monotonic clock) it was first seen as it is:
    client-go's observedRecord and observedTime."""

    record: LeaseRecord
    at: float


class Decision(Enum):
    CREATE = "create"  # no Lease yet
    RENEW = "renew"  # ours
    TAKE = "take"  # released, or expired by our own clock
    WAIT = "wait"  # another holder, still valid


def observe(previous: Observed | None, record: LeaseRecord, now: float) -> Observed:
    """client-go's rule: the observation time moves only when the record changes."""
    if previous is not None and previous.record == record:
        return previous
    return Observed(record, now)


def lease_valid(observed: Observed, now: float) -> bool:
    """client-go's `isLeaseValid`: `leaseDurationSeconds` have not yet passed since the record last
    changed, by the observer's own clock (never `renewTime` against the local wall clock)."""
    return observed.at + observed.record.duration_seconds > now


def decide(observed: Observed | None, identity: str, now: float) -> Decision:
    """What a candidate (or the leader) may do with the record it has just read (`tryAcquireOrRenew`)."""
    if observed is None:
        return Decision.CREATE
    if observed.record.holder == identity:
        return Decision.RENEW
    if not observed.record.holder or not lease_valid(observed, now):
        return Decision.TAKE
    return Decision.WAIT


def claimed(old: LeaseRecord | None, identity: str, duration_seconds: int, wall: datetime) -> LeaseRecord:
    """The record a successful acquire or renew writes: a renewal keeps acquireTime and the transition
    count, a takeover starts a new term and counts one more transition."""
    if old is not None and old.holder == identity:
        return replace(old, duration_seconds=duration_seconds, renew_time=wall)
    return LeaseRecord(
        holder=identity,
        duration_seconds=duration_seconds,
        acquire_time=wall,
        renew_time=wall,
        transitions=0 if old is None else old.transitions + 1,
    )


def released(old: LeaseRecord, wall: datetime) -> LeaseRecord:
    """client-go's `release`: no holder, a 1 s duration, the transition count kept."""
    return LeaseRecord(holder="", duration_seconds=1, acquire_time=wall, renew_time=wall, transitions=old.transitions)


def scope_of(namespaces: Iterable[str]) -> str:
    """The scope a standalone claim records: "*" for the whole cluster, else the sorted namespaces."""
    names = sorted(set(namespaces))
    return ",".join(names) if names else CLUSTER_SCOPE


def scopes_overlap(a: str, b: str) -> bool:
    if CLUSTER_SCOPE in (a, b):
        return True
    return bool(set(a.split(",")) & set(b.split(",")))


def standalone_conflict(read: Lease | None, written: Lease | None, identity: str, scope: str) -> bool:
    """Another operator acts on our scope: since our last claim, someone else wrote the Lease (a leader,
    or another standalone operator whose scope overlaps ours). A stale claim found at start-up (a
    replaced pod's) is no conflict: only a write after ours shows another operator alive."""
    if read is None or written is None or read.record == written.record:
        return False
    if not read.record.holder or read.record.holder == identity:
        return False
    return read.standalone_scope is None or scopes_overlap(read.standalone_scope, scope)


# ---- settings and defaults -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timings:
    """client-go's defaults (`LeaseDuration` 15 s, `RenewDeadline` 10 s, `RetryPeriod` 2 s) and its
    checks in `NewLeaderElector`: the leader must give up before anyone else may take over."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if min(self.lease_duration, self.renew_deadline, self.retry_period) <= 0:
            raise ValueError("lease duration, renew deadline and retry period must be positive")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("the lease duration must be longer than the renew deadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError(f"the renew deadline must be longer than {JITTER_FACTOR} × the retry period")
        if self.lease_duration != int(self.lease_duration):
            raise ValueError("the lease duration is whole seconds (leaseDurationSeconds)")


def default_identity() -> str:
    """Host name and a random suffix, as client-go's examples: a restarted pod keeps its host name but is
    a new candidate, so it never mistakes its predecessor's lease for its own."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def default_namespace(environ: dict[str, str] | None = None, service_account: Path = SERVICE_ACCOUNT_NAMESPACE) -> str:
    """The pod's namespace (POD_NAMESPACE from the downward API, else the service account's namespace
    file), else webapp-scaler (the namespace of manifests/)."""
    env = os.environ if environ is None else environ
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    with contextlib.suppress(OSError):
        found = service_account.read_text().strip()
        if found:
            return found
    return DEFAULT_NAMESPACE


# ---- the clock and the lock ----------------------------------------------------------------------------


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall(self) -> datetime: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class LeaseLock(Protocol):
    """resourcelock.Interface for a Lease: get (None when absent), create, update with the read version
    (raising `Conflict` on 409), and an Event about the lock."""

    def describe(self) -> str: ...
    async def get(self, request_timeout: float) -> Lease | None: ...
    async def create(self, record: LeaseRecord, standalone_scope: str | None, request_timeout: float) -> Lease: ...
    async def update(
        self, lease: Lease, record: LeaseRecord, standalone_scope: str | None, request_timeout: float
    ) -> Lease: ...
    async def event(self, reason: str, message: str) -> None: ...


def _micro_time(value: datetime | None) -> datetime | None:
    """The client serializes datetimes with isoformat(), which drops a zero fraction of a second, and the
    apiserver parses a MicroTime with exactly six digits of it: never send microsecond 0."""
    return None if value is None else value.replace(microsecond=value.microsecond or 1)


class KubeLeaseLock:
    """The Lease through the official client's CoordinationV1Api, each call in a worker thread (as
    `webapp_scaler.k8s` does), with a request timeout so a hung call cannot outlive the renew deadline."""

    def __init__(self, api: Any, namespace: str, name: str, identity: str) -> None:
        import kubernetes

        self._kubernetes = kubernetes
        self._coordination = kubernetes.client.CoordinationV1Api(api)
        self._core = kubernetes.client.CoreV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self._uid: str | None = None

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _lease(self, body: Any) -> Lease:
        spec = body.spec
        annotations = body.metadata.annotations or {}
        self._uid = body.metadata.uid
        return Lease(
            LeaseRecord(
                holder=spec.holder_identity or "",
                duration_seconds=int(spec.lease_duration_seconds or 0),
                acquire_time=spec.acquire_time,
                renew_time=spec.renew_time,
                transitions=int(spec.lease_transitions or 0),
            ),
            resource_version=str(body.metadata.resource_version),
            standalone_scope=annotations.get(ANNOTATION_STANDALONE),
        )

    def _body(self, record: LeaseRecord, standalone_scope: str | None, resource_version: str | None) -> Any:
        client = self._kubernetes.client
        metadata = client.V1ObjectMeta(
            name=self.name,
            namespace=self.namespace,
            resource_version=resource_version,
            labels={"app.kubernetes.io/name": "webapp-scaler"},
            annotations={ANNOTATION_STANDALONE: standalone_scope} if standalone_scope is not None else None,
        )
        spec = client.V1LeaseSpec(
            holder_identity=record.holder,
            lease_duration_seconds=record.duration_seconds,
            acquire_time=_micro_time(record.acquire_time),
            renew_time=_micro_time(record.renew_time),
            lease_transitions=record.transitions,
        )
        return client.V1Lease(api_version="coordination.k8s.io/v1", kind="Lease", metadata=metadata, spec=spec)

    async def get(self, request_timeout: float) -> Lease | None:
        try:
            body = await asyncio.to_thread(
                self._coordination.read_namespaced_lease, self.name, self.namespace, _request_timeout=request_timeout
            )
        except self._kubernetes.client.exceptions.ApiException as error:
            if error.status == 404:
                return None
            raise
        return self._lease(body)

    async def create(self, record: LeaseRecord, standalone_scope: str | None, request_timeout: float) -> Lease:
        try:
            body = await asyncio.to_thread(
                self._coordination.create_namespaced_lease,
                self.namespace,
                self._body(record, standalone_scope, None),
                _request_timeout=request_timeout,
            )
        except self._kubernetes.client.exceptions.ApiException as error:
            if error.status == 409:
                raise Conflict(self.describe()) from error
            raise
        return self._lease(body)

    async def update(
        self, lease: Lease, record: LeaseRecord, standalone_scope: str | None, request_timeout: float
    ) -> Lease:
        try:
            body = await asyncio.to_thread(
                self._coordination.replace_namespaced_lease,
                self.name,
                self.namespace,
                self._body(record, standalone_scope, lease.resource_version),
                _request_timeout=request_timeout,
            )
        except self._kubernetes.client.exceptions.ApiException as error:
            if error.status == 409:
                raise Conflict(self.describe()) from error
            raise
        return self._lease(body)

    async def event(self, reason: str, message: str) -> None:
        """An Event on the Lease, as client-go's `LeaseLock.RecordEvent` (best effort: logged if refused)."""
        client = self._kubernetes.client
        now = _micro_time(datetime.now(UTC))
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{self.name}.", namespace=self.namespace),
            involved_object=client.V1ObjectReference(
                api_version="coordination.k8s.io/v1",
                kind="Lease",
                name=self.name,
                namespace=self.namespace,
                uid=self._uid,
            ),
            reason=reason,
            message=f"{self.identity} {message}",
            type="Normal",
            source=client.V1EventSource(component="webapp-scaler"),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            reporting_component="webapp-scaler",
            reporting_instance=self.identity,
        )
        try:
            await asyncio.to_thread(self._core.create_namespaced_event, self.namespace, event, _request_timeout=5)
        except Exception as error:  # an Event is a courtesy; leadership does not depend on it
            logger.warning(f"could not post the {reason} Event on Lease {self.describe()}: {error}")


# ---- the elector ---------------------------------------------------------------------------------------


class LeaderElector:
    """client-go's `LeaderElector` for one Lease: `acquire` waits until this candidate holds it, `hold`
    renews it and returns once it is lost, `release` gives it up."""

    def __init__(self, lock: LeaseLock, identity: str, timings: Timings, clock: Clock | None = None) -> None:
        self.lock, self.identity, self.timings = lock, identity, timings
        self.clock: Clock = clock or SystemClock()
        self.observed: Observed | None = None
        self._lease: Lease | None = None  # the last version read or written: the fast path updates it
        self._reported_holder: str | None = None
        self.renewed_at = 0.0  # monotonic: when the last successful acquire or renew started
        self.leading = False

    @property
    def holder(self) -> str:
        return self.observed.record.holder if self.observed else ""

    def _valid_as_ours(self, now: float) -> bool:
        return (
            self.observed is not None
            and self.observed.record.holder == self.identity
            and lease_valid(self.observed, now)
        )

    def _set_observed(self, lease: Lease) -> None:
        self._lease = lease
        self.observed = observe(self.observed, lease.record, self.clock.monotonic())

    async def try_acquire_or_renew(self, request_timeout: float | None = None) -> bool:
        """One attempt (`tryAcquireOrRenew`): True when this candidate holds the lease afterwards."""
        timeout = request_timeout or self.timings.renew_deadline
        duration = int(self.timings.lease_duration)
        # 1. the leader's fast path: update the version it wrote last, assuming nobody else touched it
        if self._lease is not None and self._valid_as_ours(self.clock.monotonic()):
            try:
                record = claimed(self._lease.record, self.identity, duration, self.clock.wall())
                self._set_observed(await self.lock.update(self._lease, record, None, timeout))
                return True
            except Conflict:
                logger.debug(f"Lease {self.lock.describe()} changed since our renewal: reading it again")
        # 2. read (or create) the record
        lease = await self.lock.get(timeout)
        if lease is None:
            try:
                created = await self.lock.create(
                    claimed(None, self.identity, duration, self.clock.wall()), None, timeout
                )
            except Conflict:  # another candidate created it first: read whose it is now, not a retry later
                lease = await self.lock.get(timeout)
                if lease is None:
                    return False
            else:
                self._set_observed(created)
                return True
        self._set_observed(lease)
        assert self.observed is not None
        decision = decide(self.observed, self.identity, self.clock.monotonic())
        self._report_holder(lease)
        if decision is Decision.WAIT:
            return False
        # 3. renew or take it, with the version just read: a concurrent taker gets 409
        try:
            record = claimed(lease.record, self.identity, duration, self.clock.wall())
            self._set_observed(await self.lock.update(lease, record, None, timeout))
        except Conflict:
            return False
        return True

    def _report_holder(self, lease: Lease) -> None:
        """client-go's `OnNewLeader`: say once who holds the lease, when it is someone else."""
        holder = lease.record.holder
        if holder == self._reported_holder or holder == self.identity:
            return
        self._reported_holder = holder
        if lease.standalone_scope is not None:
            logger.warning(
                f"Lease {self.lock.describe()} is claimed by a standalone operator, {holder} "
                f"(watching {lease.standalone_scope}): this replica waits while it renews its claim"
            )
        elif holder:
            logger.info(f"Lease {self.lock.describe()} is held by {holder}: this replica waits")

    async def _attempt(self, deadline: float) -> bool:
        """One attempt, abandoned after `deadline` seconds (each request also times out by then)."""
        started = self.clock.monotonic()
        try:
            ok = await asyncio.wait_for(self.try_acquire_or_renew(deadline), deadline)
        except (TimeoutError, Conflict):
            return False
        except Exception as error:  # an unreachable or refusing apiserver: retried every retry period
            logger.warning(f"Lease {self.lock.describe()}: {error}")
            return False
        if ok:
            self.renewed_at = started
        return ok

    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Try every retry period (with client-go's jitter) until the lease is ours; False if `stop` is set
        first. Says "became leader" (log, Event on the Lease, `webapp_scaler_leader` 1)."""
        stop = stop or asyncio.Event()
        logger.info(f"{self.identity}: attempting to acquire Lease {self.lock.describe()}")
        while not stop.is_set():
            if await self._attempt(self.timings.renew_deadline):
                self.leading = True
                telemetry.LEADER.set(1)
                logger.info(f"{self.identity} became leader (Lease {self.lock.describe()})")
                await self.lock.event("LeaderElection", "became leader")
                return True
            await self._sleep_or_stop(self.timings.retry_period * (1 + random.random() * JITTER_FACTOR), stop)
        return False

    async def _sleep_or_stop(self, seconds: float, stop: asyncio.Event) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        _, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    async def hold(self) -> None:
        """Renew every retry period; return once the lease is lost: not renewed within the renew deadline
        (counted from the start of the last successful renewal, so the leader stops before another
        replica's lease duration, counted from when it saw that renewal, runs out), or held by another.
        Says "lost leadership" (log, Event, `webapp_scaler_leader` 0)."""
        try:
            while True:
                remaining = self.timings.renew_deadline - (self.clock.monotonic() - self.renewed_at)
                await self.clock.sleep(max(0.0, min(self.timings.retry_period, remaining)))
                remaining = self.timings.renew_deadline - (self.clock.monotonic() - self.renewed_at)
                if remaining > 0 and await self._attempt(remaining):
                    continue
                if self.holder and self.holder != self.identity:
                    logger.error(
                        f"{self.identity} lost leadership: Lease {self.lock.describe()} is held by {self.holder}"
                    )
                    break
                if self.clock.monotonic() - self.renewed_at >= self.timings.renew_deadline:
                    logger.error(
                        f"{self.identity} lost leadership: Lease {self.lock.describe()} not renewed within the "
                        f"renew deadline ({self.timings.renew_deadline:g} s)"
                    )
                    break
        finally:
            self.leading = False
            telemetry.LEADER.set(0)
        await self.lock.event("LeaderElection", "lost leadership")

    async def release(self) -> bool:
        """client-go's `release`: clear the holder if we still hold the lease, so a standby takes over at
        once. Only after everything the lease guards has stopped (client-go's ReleaseOnCancel warning)."""
        self.leading = False
        telemetry.LEADER.set(0)
        deadline = self.timings.renew_deadline
        for _ in range(3):  # a conflict with our own in-flight renewal: read again and retry
            try:
                lease = await asyncio.wait_for(self.lock.get(deadline), deadline)
                if lease is None or lease.record.holder != self.identity:
                    return False
                await asyncio.wait_for(
                    self.lock.update(lease, released(lease.record, self.clock.wall()), None, deadline), deadline
                )
            except Conflict:
                continue
            except Exception as error:
                logger.warning(f"could not release Lease {self.lock.describe()}: {error}")
                return False
            logger.info(f"{self.identity} released Lease {self.lock.describe()}")
            return True
        return False


# ---- standalone operators: claim, and report another ----------------------------------------------------


class StandaloneClaim:
    """What `--standalone` does with the Lease: it never waits for it (standalone means no coordination),
    but writes it every retry period as its claim (holder: itself, its watched scope in an annotation).
    When it reads a write by someone else since its last claim, and their scopes overlap, two operators
    act on the same WebAppScalings: an error is logged and `webapp_scaler_standalone_conflict` is 1 until
    a lease duration passes without seeing one."""

    def __init__(
        self, lock: LeaseLock, identity: str, scope: str, timings: Timings, clock: Clock | None = None
    ) -> None:
        self.lock, self.identity, self.scope, self.timings = lock, identity, scope, timings
        self.clock: Clock = clock or SystemClock()
        self.written: Lease | None = None
        self.conflict_seen_at: float | None = None
        self.other = ""
        self._failing = False

    @property
    def in_conflict(self) -> bool:
        seen = self.conflict_seen_at
        return seen is not None and self.clock.monotonic() - seen < self.timings.lease_duration

    async def step(self) -> bool:
        """Read, judge, claim; True when another operator was seen."""
        timeout = self.timings.renew_deadline
        read = await self.lock.get(timeout)
        found = standalone_conflict(read, self.written, self.identity, self.scope)
        if found:
            assert read is not None
            if not self.in_conflict or read.record.holder != self.other:
                logger.error(
                    f"another operator acts on the WebAppScalings of this standalone operator: {read.record.holder} "
                    f"renews Lease {self.lock.describe()} (watching {read.standalone_scope or 'as elected leader'}; "
                    f"this one, {self.identity}, watches {self.scope}). Run one standalone operator, or all "
                    "replicas with leader election (docs/operator.md)"
                )
            self.other = read.record.holder
            self.conflict_seen_at = self.clock.monotonic()
        elif self.conflict_seen_at is not None and not self.in_conflict:
            logger.info(f"no other operator seen on Lease {self.lock.describe()} for {self.timings.lease_duration:g} s")
            self.conflict_seen_at = None
        telemetry.STANDALONE_CONFLICT.set(1 if self.in_conflict else 0)
        record = claimed(
            read.record if read and read.record.holder == self.identity else None,
            self.identity,
            int(self.timings.lease_duration),
            self.clock.wall(),
        )
        if read is not None and read.record.holder != self.identity:
            record = replace(record, transitions=read.record.transitions + 1)
        try:
            if read is None:
                self.written = await self.lock.create(record, self.scope, timeout)
            else:
                self.written = await self.lock.update(read, record, self.scope, timeout)
        except Conflict:
            pass  # someone wrote between our read and our write: the next step sees it
        return found

    async def run(self) -> None:
        """`step` every retry period until cancelled; failures (no rights on Leases, say) are logged once
        and never stop the operator, which acts regardless."""
        while True:
            try:
                await self.step()
                self._failing = False
            except Exception as error:
                if not self._failing:
                    logger.warning(f"standalone claim on Lease {self.lock.describe()} failed (retrying): {error}")
                self._failing = True
            # with client-go's jitter: claims at one fixed period fall into a fixed order, and an operator
            # reading the Lease just after a third one's write would never see the second's
            await self.clock.sleep(self.timings.retry_period * (1 + random.random() * JITTER_FACTOR))
