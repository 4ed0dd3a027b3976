"""One WebAppScaling's control loop: observe → scrape → decide → act → report, once per scrape interval.

The decision is the engine's (`engine.decide`, the same function the benchmark runs); this module only
gathers its inputs from the cluster and carries out its output. Everything restart-relevant is read
from the cluster each round (VMs, their annotations, VMIs, DataVolumes); the in-memory parts (moving-
average samples, stabilization history, expectations) rebuild themselves within one window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from webapp_scaler import fleet as fleet_mod
from webapp_scaler import golden_image, load_balancers, model, naming, resources, status, telemetry
from webapp_scaler.constants import (
    ANNOTATION_DRAINING_SINCE,
    ANNOTATION_STARTED_AT,
    ANNOTATION_WARM,
    DRAIN_TOKEN_KEY,
    GATEWAY_GROUP,
    HTTPROUTE_CRD,
    ConditionType,
    Reason,
)
from webapp_scaler.engine.decide import decide
from webapp_scaler.expectations import Expectations
from webapp_scaler.golden_reads import FRESH_SECONDS, GoldenImageReads
from webapp_scaler.k8s import AlreadyExists, Kube
from webapp_scaler.load_balancers import Concern, GatewayParent, RouteVerdict
from webapp_scaler.sources.base import DrainControl, DrainError, DrainModeUnsupported, Reading, SessionSource
from webapp_scaler.webappscaling import (
    GoldenImageSpec,
    InvalidWebAppScaling,
    RouteSpec,
    ScalingSpec,
    SecretKeyRef,
    Spec,
    WebAppScaling,
)

# event(type, reason, message): posts a Kubernetes Event on the WebAppScaling
EventSink = Callable[[str, str, str], None]
GOLDEN_RECHECK_SECONDS = 30.0  # once ready, the golden image is re-read this often
NETWORK_REAPPLY_SECONDS = 300.0  # Service/Ingress/HTTPRoute re-applied at least this often (repairs manual edits)
ROUTE_RECHECK_SECONDS = 30.0  # a route that is not out as asked (no Gateway API yet, refused) is retried this often
REFUSED = (400, 403, 404, 422)  # the apiserver refuses what we sent, or forbids it: a person must fix or grant
# per round step: what it does, and its condition reasons when the apiserver refuses it (Stalled: a person
# must act) or when it fails otherwise (a timeout, a 5xx: Ready False, retried next round)
STEPS: Mapping[str, tuple[str, Reason, Reason]] = {
    "golden_image": ("reading the golden image", Reason.GOLDEN_IMAGE_REJECTED, Reason.GOLDEN_IMAGE_READ_FAILED),
    "service": ("applying the Service", Reason.SERVICE_REJECTED, Reason.SERVICE_APPLY_FAILED),
    "ingress": ("applying the Ingress", Reason.INGRESS_REJECTED, Reason.INGRESS_APPLY_FAILED),
    "httproute": ("applying the HTTPRoute", Reason.HTTPROUTE_REJECTED, Reason.HTTPROUTE_APPLY_FAILED),
    "drain_tokens": ("reading the drain-token Secret", Reason.DRAIN_TOKEN_REJECTED, Reason.DRAIN_TOKEN_FAILED),
    "actions": ("carrying out the decision", Reason.SCALE_ACTION_REJECTED, Reason.SCALE_ACTION_FAILED),
    "status": ("writing the status", Reason.STATUS_PATCH_REJECTED, Reason.STATUS_PATCH_FAILED),
}
assert tuple(STEPS) == telemetry.ROUND_STEPS
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepFailure:
    """Why one step of a round failed: the condition's reason and message, and whether a person must act."""

    reason: str
    message: str
    needs_person: bool


@dataclass
class Runtime:
    """Process-wide clients, shared by every WebAppScaling's loop. Each is an interface, so unit tests
    drive a whole round against fakes of our own wrappers (`Kube`, `SessionSource`, `DrainControl`)."""

    kube: Kube
    source: SessionSource
    drainer: DrainControl
    clock: Callable[[], float] = time.time
    own_addresses: frozenset[str] = frozenset()  # never a scrape or drain target
    golden_reads: GoldenImageReads = field(default_factory=GoldenImageReads)


@dataclass
class Reconciler:
    """The memory of one WebAppScaling between rounds; losing it (restart) is safe."""

    namespace: str
    name: str
    memory: model.EngineMemory = field(default_factory=model.EngineMemory)
    expectations: Expectations = field(default_factory=Expectations)
    drain_confirmed: dict[str, str] = field(default_factory=dict)  # VM → the drain mode its agent accepted
    drain_refused: dict[str, str] = field(default_factory=dict)  # VM → why its agent refused the drain mode
    last_status: dict[str, Any] | None = None
    golden: golden_image.GoldenImageVerdict | None = None
    golden_checked_at: float = float("-inf")
    network_applied: tuple[int, float] | None = None  # (generation, when)
    conflicts: list[str] = field(default_factory=list)  # objects of another owner in our names
    route_checked: tuple[int, float] | None = None  # (generation, when) the HTTPRoute was last handled
    route: RouteVerdict | None = None  # None without spec.route
    route_conflict: str | None = None  # an HTTPRoute of another owner in our name
    gateway_concerns: list[Concern] = field(default_factory=list)  # what the route's Gateways do to a drain
    untrusted: dict[str, str] = field(default_factory=dict)  # VM → why its address is not used
    tokens: dict[str, str] = field(default_factory=dict)  # VM → its own drain token, once known
    create_refused: str | None = None  # why the apiserver refused the last VM create (Stalled), until one succeeds
    step_failures: dict[str, StepFailure] = field(default_factory=dict)  # step → its last failure, until it works
    failed_now: set[str] = field(default_factory=set)  # the steps that failed in this round
    bad_readings: dict[str, str] = field(default_factory=dict)  # VM → the problem kind of its last invalid reading
    stopped: set[str] = field(default_factory=set)  # VMs a person stopped, already reported by an Event
    # set by the watch of our Service, Ingress and HTTPRoute (`owned_object_changed`): the loop repairs them
    # between rounds instead of at the next periodic re-apply
    repair_due: asyncio.Event = field(default_factory=asyncio.Event)
    deleted_by_hand: set[str] = field(default_factory=set)  # "Kind namespace/name" seen deleted, until made again

    async def round(
        self, rt: Runtime, was: WebAppScaling | InvalidWebAppScaling, fleet: fleet_mod.Fleet, event: EventSink
    ) -> None:
        """One round on one view of the fleet: the states are computed once, corrected once by the
        expectations, then scraped, decided on, acted on and reported from that same list."""
        started = time.monotonic()
        now = rt.clock()
        self.failed_now = set()
        golden: golden_image.GoldenImageVerdict | None = None
        readings: list[Reading] = []
        decision: model.Decision | None = None
        states = self.expectations.apply(fleet.states(rt.own_addresses), now)
        untrusted = fleet.address_problems(rt.own_addresses)
        for name in sorted(untrusted.keys() - self.untrusted.keys()):
            event("Warning", str(Reason.UNTRUSTED_ADDRESS), f"VM {name}: {untrusted[name]}; not scraped, not drained")
        self.untrusted = untrusted
        self._report_stopped(states, event)
        if isinstance(was, WebAppScaling):
            spec = was.spec
            golden = await self._golden_image_step(rt, spec.workload.golden_image, now, event)
            await self._network(rt, was, now, event)
            with self._step("httproute", event):
                await self._route(rt, was, now, event)
            sessions = spec.scaling.sessions
            readings = await rt.source.read(
                fleet_mod.scrape_targets(states, sessions.agent),
                metric=sessions.agent.metric,
                scrape_timeout=sessions.scrape_timeout_seconds,
            )
            self._record_scrapes(readings)
            self._report_bad_readings(readings, event)
            states = fleet_mod.with_sessions(states, readings)
            decision = decide(now, spec.scaling, states, self.memory)
            self.memory = decision.memory
            if (decision.create or decision.create_warm) and golden.ready and self.golden_checked_at < now:
                # the verdict is cached for GOLDEN_RECHECK_SECONDS: read the source again before cloning it,
                # so a golden image deleted meanwhile gets no more clones (which would hang, unstartable)
                golden = await self._golden_image_step(rt, spec.workload.golden_image, now, event, fresh=True)
            with self._step("actions", event):
                await self._act(rt, was, spec, decision, golden, states, event, now)

        valid = was if isinstance(was, WebAppScaling) else None
        drain_concerns = list(self.gateway_concerns)
        if valid is not None:
            drain_concerns += load_balancers.ingress_concerns(
                valid.spec.scaling.scale_in.drain, valid.spec.workload.ingress
            )
        conditions = status.conditions(
            golden=golden,
            readings=readings,
            states=states,
            decision=decision,
            spec=valid.spec.scaling if valid else None,
            spec_error=None if isinstance(was, WebAppScaling) else was.error,
            conflicts=[*self.conflicts, *([self.route_conflict] if self.route_conflict else [])],
            untrusted=self.untrusted,
            drain_refused=self.drain_refused,
            drain_concerns=drain_concerns,
            route=self.route if valid and valid.spec.workload.route else None,
            create_refused=self.create_refused if valid else None,
        )
        if valid is not None:
            conditions = self._with_step_failures(conditions, golden, states, decision)
        new_status = status.build_status(
            name=self.name,
            generation=was.generation,
            states=states,
            scraped=any(r.sessions is not None for r in readings),  # no agent answered: unknown, not 0
            decision=decision,
            condition_list=conditions,
            previous=self.last_status if self.last_status is not None else was.status,
            now=now,
            drain_mode=status.drain_mode(valid.spec.scaling.scale_in.drain) if valid else None,
        )
        if new_status != self.last_status:
            with self._step("status", event):
                await rt.kube.patch_status(self.namespace, self.name, new_status)
                self.last_status = new_status
        self._record_gauges(new_status, decision, states, valid.spec.scaling if valid else None, now)
        telemetry.RECONCILE_SECONDS.labels(self.namespace, self.name).observe(time.monotonic() - started)

    # ---- the steps of a round -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _step(self, step: str, event: EventSink, what: str | None = None) -> Iterator[None]:
        """Run one step of the round so that its failure stops only itself: the decision and the VM actions
        happen even when the Service or the Ingress cannot be applied. A failure becomes the step's
        condition (`_with_step_failures`), a Warning Event when its message changes (a step failing every
        round must not flood the namespace) and a count in webapp_scaler_round_failures_total; a step that
        works again is forgotten."""
        try:
            yield
        except Exception as error:  # any failure of this step; the round's other steps still run
            self._failed(step, error, event, what)
        else:
            if step not in self.failed_now:
                self.step_failures.pop(step, None)

    def _failed(self, step: str, error: Exception, event: EventSink | None, what: str | None = None) -> None:
        """Record one failure of a step; `event` None when the caller posts its own Event."""
        doing, rejected, failed = STEPS[step]
        doing = what or doing
        if isinstance(error, ApiException) and error.status in REFUSED:
            message = f"{doing}: the apiserver refused it (HTTP {error.status}): {_api_message(error)}"
            failure = StepFailure(rejected, message, needs_person=True)
        else:
            detail = f"HTTP {error.status}: {_api_message(error)}" if isinstance(error, ApiException) else repr(error)
            failure = StepFailure(failed, f"{doing} failed ({detail}); retried next round", needs_person=False)
            if not isinstance(error, ApiException | OSError) and not _transport_error(error):
                # an unexpected error: its traceback; an unreachable apiserver (urllib3's MaxRetryError,
                # every step of every round during an outage) is one line, not a traceback each
                _log.warning("%s/%s: %s", self.namespace, self.name, failure.message, exc_info=error)
        if event is not None and self.step_failures.get(step) != failure:
            event("Warning", failure.reason, failure.message)
        self.step_failures[step] = failure
        self.failed_now.add(step)
        telemetry.ROUND_FAILURES.labels(self.namespace, self.name, step).inc()

    def _with_step_failures(
        self,
        conditions: list[status.Condition],
        golden: golden_image.GoldenImageVerdict | None,
        states: list[model.VMState],
        decision: model.Decision | None,
    ) -> list[status.Condition]:
        """The failing steps in the conditions, as kstatus reads them: Ready False naming every failing
        step, and Stalled True for the first one the apiserver refused (our own rendered object, a 422: no
        round can get past it without a person) unless an earlier blocker is named already; Reconciling
        follows Stalled. The status patch is left out: its failure cannot be written in the status."""
        failures = [f for step, f in self.step_failures.items() if step != "status"]
        if self.route is not None and self.route.reason == Reason.ROUTE_REJECTED:
            failures.append(StepFailure(str(Reason.ROUTE_REJECTED), self.route.message, needs_person=True))
        if not failures:
            return conditions
        stalled = next(c for c in conditions if c.type == ConditionType.STALLED)
        stalling = next((f for f in failures if f.needs_person), None)
        if stalling is not None and not stalled.status:
            stalled = status.Condition(ConditionType.STALLED, True, stalling.reason, stalling.message)
        ready = status.Condition(ConditionType.READY, False, failures[0].reason, "; ".join(f.message for f in failures))
        replaced = {
            ConditionType.READY: ready,
            ConditionType.STALLED: stalled,
            ConditionType.RECONCILING: status.reconciling_condition(
                stalled=stalled, golden=golden, states=states, decision=decision
            ),
        }
        return [replaced.get(c.type, c) for c in conditions]

    # ---- hand edits (docs/operator.md "Hand edits") ------------------------------------------------
    def owned_object_changed(self, kind: str, name: str, *, deleted: bool) -> None:
        """The watch saw a Service, Ingress or HTTPRoute this WebAppScaling controls change or go. Its apply
        is made due again (applied-once-per-generation would otherwise wait for the periodic re-apply,
        minutes) and the loop is woken to `repair` at once; a deletion is remembered so the re-creation is
        reported. Our own applies wake it too: those repairs are no-op applies."""
        if kind == "HTTPRoute":
            self.route_checked = None
        else:
            self.network_applied = None
        if deleted:
            self.deleted_by_hand.add(f"{kind} {self.namespace}/{name}")
        self.repair_due.set()

    async def repair(self, rt: Runtime, was: WebAppScaling | InvalidWebAppScaling, event: EventSink) -> None:
        """Between rounds: apply the Service, the Ingress and the HTTPRoute again, nothing else — the VMs,
        the scrape and the engine keep their own pace. Server-side apply with force takes back a field of
        ours a person changed and leaves the fields others set; an object that is not ours is still never
        touched. A step that fails is reported by the next round's conditions, as in a round."""
        self.repair_due.clear()
        if isinstance(was, WebAppScaling):
            now = rt.clock()
            self.failed_now = set()
            await self._network(rt, was, now, event)
            with self._step("httproute", event):
                await self._route(rt, was, now, event)
        self.deleted_by_hand.clear()  # what was not made again is not wanted (or failed: retried each round)

    def _made_again(self, what: str, event: EventSink) -> None:
        if what in self.deleted_by_hand:
            self.deleted_by_hand.discard(what)
            event("Normal", str(Reason.REPAIRED), f"{what} was deleted by hand: made again from the spec")

    def _report_stopped(self, states: list[model.VMState], event: EventSink) -> None:
        """One Warning Event per VM a person stopped, when it is first seen stopped (Ready's message names
        them every round): it is not capacity, and it is left as it is."""
        stopped = {s.name for s in states if s.phase is model.VMPhase.STOPPED}
        for name in sorted(stopped - self.stopped):
            event(
                "Warning",
                str(Reason.VM_STOPPED),
                f"VM {name} was stopped by hand (spec.runStrategy Halted, not in the warm pool): not counted as "
                "capacity, a replacement is made if the fleet needs one, and it is left alone — set its "
                "runStrategy to Always to return it (a VM too many is then drained), or delete it",
            )
        self.stopped = stopped

    # ---- observe -----------------------------------------------------------------------------------
    async def _golden_image_step(
        self, rt: Runtime, image: GoldenImageSpec, now: float, event: EventSink, *, fresh: bool = False
    ) -> golden_image.GoldenImageVerdict:
        """The golden image's verdict (`fresh`: read now, not the cached one); when it cannot be read this
        round, the last one (or not ready)."""
        with self._step("golden_image", event):
            return await self._golden_image(rt, image, now, fresh=fresh)
        message = self.step_failures["golden_image"].message
        return self.golden or golden_image.GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_READY, message)

    async def _golden_image(
        self, rt: Runtime, image: GoldenImageSpec, now: float, *, fresh: bool = False
    ) -> golden_image.GoldenImageVerdict:
        cached = self.golden is not None and self.golden.ready and now - self.golden_checked_at < GOLDEN_RECHECK_SECONDS
        if cached and not fresh:
            assert self.golden is not None
            return self.golden
        # shared with every object made from this image: a ready one's read serves for the recheck
        # interval, anything else (and a read before cloning) only while it is fresh
        max_age = FRESH_SECONDS if fresh or self.golden is None or not self.golden.ready else GOLDEN_RECHECK_SECONDS
        read_at, read = await rt.golden_reads.source(
            rt.kube, image.kind, image.namespace, image.name, now, max_age=max_age
        )
        source, readable = read.source, read.readable
        clone_allowed = True
        if readable and source is not None and image.namespace != self.namespace:
            clone_allowed = await rt.golden_reads.clone_allowed(rt.kube, image.namespace, now, max_age=max_age)
        self.golden = golden_image.evaluate(
            image.kind, image.namespace, image.name, source, readable=readable, clone_allowed=clone_allowed
        )
        self.golden_checked_at = read_at  # the verdict is as old as the read it comes from
        return self.golden

    async def _network(self, rt: Runtime, was: WebAppScaling, now: float, event: EventSink) -> None:
        """Apply the Service and the Ingress — only where no object of another owner has the name. An
        object we do not control is never changed or deleted: the clash is a Stalled condition and an
        Event, re-checked every round until it is gone."""
        applied = self.network_applied
        fresh = applied and applied[0] == was.generation and now - applied[1] < NETWORK_REAPPLY_SECONDS
        if fresh and not self.conflicts:
            return
        conflicts: list[str] = []
        service = resources.build_service(was)
        with self._step("service", event, f"applying Service {self.namespace}/{service['metadata']['name']}"):
            found = await rt.kube.get_network_object("Service", self.namespace, service["metadata"]["name"])
            if self._ours_or_absent(was, service, found, conflicts):
                await rt.kube.apply(service)
                if found is None:
                    self._made_again(f"Service {self.namespace}/{service['metadata']['name']}", event)
        ingress_name = naming.ingress_name(self.name)
        with self._step("ingress", event, f"applying Ingress {self.namespace}/{ingress_name}"):
            found = await rt.kube.get_network_object("Ingress", self.namespace, ingress_name)
            ingress = resources.build_ingress(was)
            if ingress is not None:
                if self._ours_or_absent(was, ingress, found, conflicts):
                    await rt.kube.apply(ingress)
                    if found is None:
                        self._made_again(f"Ingress {self.namespace}/{ingress_name}", event)
            elif found is not None and resources.controlled_by(found, was):
                await rt.kube.delete_ingress(self.namespace, ingress_name)
        if conflicts and conflicts != self.conflicts:
            event("Warning", str(Reason.NAME_CONFLICT), "; ".join(conflicts))
        self.conflicts = conflicts
        if not self.failed_now & {"service", "ingress"}:  # a failed apply is retried next round
            self.network_applied = (was.generation, now)

    def _ours_or_absent(
        self, was: WebAppScaling, wanted: dict[str, Any], found: dict[str, Any] | None, conflicts: list[str]
    ) -> bool:
        if found is None or resources.controlled_by(found, was):
            return True
        conflicts.append(
            f"{wanted['kind']} {self.namespace}/{wanted['metadata']['name']} exists and is not controlled by this "
            "WebAppScaling: left untouched; delete or rename it, or rename the WebAppScaling"
        )
        return False

    async def _route(self, rt: Runtime, was: WebAppScaling, now: float, event: EventSink) -> None:
        """Apply, or remove, the HTTPRoute of spec.route. Gateway API is optional: without it (or with the
        standard channel where sessionPersistence was asked) the route is reported in RouteReady and
        nothing else changes. Re-done on a spec change, every 5 minutes, and every 30 s while the route
        is not out as asked."""
        checked = self.route_checked
        every = NETWORK_REAPPLY_SECONDS if self.route is None or self.route.ready else ROUTE_RECHECK_SECONDS
        if checked and checked[0] == was.generation and now - checked[1] < every:
            return
        before = self.route
        self.route, self.route_conflict, self.gateway_concerns = await self._route_verdict(rt, was, event)
        self.route_checked = (was.generation, now)
        if self.route is not None and self.route.reason == Reason.ROUTE_REJECTED:
            telemetry.ROUND_FAILURES.labels(self.namespace, self.name, "httproute").inc()
        if self.route is not None and not self.route.ready and self.route != before:
            event("Warning", str(self.route.reason), self.route.message)

    async def _route_verdict(
        self, rt: Runtime, was: WebAppScaling, event: EventSink
    ) -> tuple[RouteVerdict | None, str | None, list[Concern]]:
        wanted = was.spec.workload.route
        name = naming.route_name(self.name)
        try:
            found = await rt.kube.get_network_object("HTTPRoute", self.namespace, name)
        except ApiException as error:  # e.g. RBAC without httproutes: nothing of ours can be seen there
            if wanted is None:
                return None, None, []
            return RouteVerdict(False, Reason.ROUTE_REJECTED, f"reading HTTPRoute: {_api_message(error)}"), None, []
        if wanted is None:
            if found is not None and resources.controlled_by(found, was):
                await rt.kube.delete_route(self.namespace, name)
            return None, None, []
        try:
            api = load_balancers.gateway_api(await rt.kube.get_crd(HTTPROUTE_CRD))
        except ApiException as error:
            if error.status != 403:
                raise
            api = load_balancers.UNREADABLE_GATEWAY_API
        if not api.installed:
            message = (
                f"spec.route needs the Gateway API, and the cluster has no CRD {HTTPROUTE_CRD}: install Gateway "
                "API's standard or experimental channel; the Service, the Ingress and scaling are not affected"
            )
            return RouteVerdict(False, Reason.GATEWAY_API_NOT_INSTALLED, message), None, []
        route = resources.build_httproute(was, session_persistence_served=api.session_persistence)
        assert route is not None
        conflicts: list[str] = []
        if not self._ours_or_absent(was, route, found, conflicts):
            return RouteVerdict(False, Reason.NAME_CONFLICT, conflicts[0]), conflicts[0], []
        try:
            await rt.kube.apply(route)
        except ApiException as error:
            if error.status not in (400, 403, 404, 422):
                raise
            message = f"the apiserver refused HTTPRoute {self.namespace}/{name}: {_api_message(error)}"
            return RouteVerdict(False, Reason.ROUTE_REJECTED, message), None, []
        if found is None:
            self._made_again(f"HTTPRoute {self.namespace}/{name}", event)
        parents = await self._gateway_parents(rt, wanted)
        concerns = load_balancers.gateway_concerns(was.spec.scaling.scale_in.drain, wanted, parents)
        persistence = load_balancers.session_persistence_concern(wanted, api, parents)
        if persistence is not None:
            return RouteVerdict(False, persistence.reason, persistence.message), None, concerns
        return RouteVerdict(True, Reason.ROUTE_APPLIED, _describe_route(was, route)), None, concerns

    async def _gateway_parents(self, rt: Runtime, route: RouteSpec) -> list[GatewayParent]:
        """The route's Gateways with their class's controller, where the operator may read them; a parent it
        cannot read is left out (nothing is concluded about it)."""
        parents: list[GatewayParent] = []
        for ref in route.parent_refs:
            if (ref.group or GATEWAY_GROUP) != GATEWAY_GROUP or (ref.kind or "Gateway") != "Gateway":
                continue
            namespace = ref.namespace or self.namespace
            if any((p.namespace, p.name) == (namespace, ref.name) for p in parents):
                continue
            try:
                gateway = await rt.kube.get_gateway(namespace, ref.name)
                class_name = str(((gateway or {}).get("spec") or {}).get("gatewayClassName") or "")
                gateway_class = await rt.kube.get_gateway_class(class_name) if class_name else None
            except ApiException as error:
                if error.status != 403:
                    raise
                continue
            controller = str(((gateway_class or {}).get("spec") or {}).get("controllerName") or "")
            if controller:
                parents.append(GatewayParent(namespace, ref.name, class_name, controller))
        return parents

    def _record_scrapes(self, readings: list[Reading]) -> None:
        for reading in readings:
            telemetry.SCRAPE_SECONDS.labels(self.namespace, self.name).observe(reading.seconds)
            if reading.sessions is None:
                telemetry.SCRAPE_ERRORS.labels(self.namespace, self.name).inc()

    def _report_bad_readings(self, readings: list[Reading], event: EventSink) -> None:
        """A Warning Event naming the VM and what is wrong with its agent's answer, once per VM each time its
        problem changes (a new kind, not new numbers in the message): a bad agent answers every round, and
        an Event per round would flood the namespace. A VM that answers validly again is forgotten."""
        bad = {r.vm: (r.problem or "invalid", r.error or "no valid reading") for r in readings if r.sessions is None}
        for vm in sorted(bad):
            problem, error = bad[vm]
            if self.bad_readings.get(vm) != problem:
                message = f"VM {vm}: {error}; its reading is not used, the fleet is not scaled in on it"
                event("Warning", str(Reason.FAILED_GET_METRICS), message)
        self.bad_readings = {vm: problem for vm, (problem, _) in bad.items()}

    def _record_gauges(
        self,
        new_status: Mapping[str, Any],
        decision: model.Decision | None,
        states: list[model.VMState],
        scaling: ScalingSpec | None,
        now: float,
    ) -> None:
        labels = (self.namespace, self.name)
        telemetry.start(*labels)
        for phase in model.VMPhase:
            telemetry.REPLICAS.labels(*labels, str(phase)).set(sum(1 for s in states if s.phase is phase))
        drains = [now - s.draining_since for s in states if s.phase is model.VMPhase.DRAINING and s.draining_since]
        telemetry.OLDEST_DRAIN_SECONDS.labels(*labels).set(max(drains, default=0.0))
        for condition in new_status["conditions"]:
            telemetry.CONDITION.labels(*labels, condition["type"]).set(1 if condition["status"] == "True" else 0)
        if scaling is not None:
            telemetry.MAX_REPLICAS.labels(*labels).set(scaling.replicas.max)
            telemetry.TARGET_PER_VM.labels(*labels).set(scaling.sessions.target_per_vm)
            telemetry.DRAIN_TIMEOUT_SECONDS.labels(*labels).set(scaling.scale_in.drain.timeout_seconds)
        if decision is not None:
            telemetry.DECISION_REASONS.labels(*labels, str(decision.reason)).inc()
            if decision.forecast_sessions is not None:
                telemetry.SESSIONS_FORECAST.labels(*labels).set(decision.forecast_sessions)
        telemetry.DESIRED.labels(*labels).set(new_status["desiredReplicas"])
        telemetry.CURRENT.labels(*labels).set(new_status["replicas"])
        telemetry.READY.labels(*labels).set(new_status["readyReplicas"])
        current = new_status["sessions"]["current"]
        if current is not None:
            telemetry.SESSIONS.labels(*labels).set(current)
        if decision is not None and decision.average_sessions is not None:
            telemetry.SESSIONS_AVERAGE.labels(*labels).set(decision.average_sessions)

    # ---- act ---------------------------------------------------------------------------------------
    async def _act(
        self,
        rt: Runtime,
        was: WebAppScaling,
        spec: Spec,
        decision: model.Decision,
        golden: golden_image.GoldenImageVerdict,
        states: list[model.VMState],
        event: EventSink,
        now: float,
    ) -> None:
        """Carry out the decision. Which VMs are draining, where each agent answers and how many
        sessions a VM holds all come from `states`, the list the engine decided on."""
        count = self._count_action
        if not (decision.create or decision.create_warm):
            self.create_refused = None  # no VM wanted any more: nothing is blocked
        if decision.create or decision.create_warm:
            if not golden.ready:
                event("Warning", str(golden.reason), f"not creating VMs: {golden.message}")
            else:
                created = await self._create(rt, was, spec, decision.create, warm=False, now=now, event=event)
                if created:
                    count("create", created)
                    event("Normal", str(Reason.SCALED_UP), f"{decision.message}; created {created} VM(s)")
                warm = await self._create(rt, was, spec, decision.create_warm, warm=True, now=now, event=event)
                if warm:
                    count("create_warm", warm)
                    event("Normal", str(Reason.WARM_POOL_FILLED), f"created {warm} stopped VM(s) for the warm pool")
        for name in decision.start:
            await rt.kube.patch_vm(
                self.namespace,
                name,
                {
                    "metadata": {
                        "annotations": {ANNOTATION_WARM: None, ANNOTATION_STARTED_AT: fleet_mod.format_time(now)}
                    },
                    "spec": {"runStrategy": "Always"},
                },
            )
            self.expectations.started[name] = now
            count("start", 1)
            event("Normal", str(Reason.SCALED_UP), f"{decision.message}; started warm VM {name}")
        by_name = {s.name: s for s in states}
        self.drain_confirmed = {vm: m for vm, m in self.drain_confirmed.items() if vm in by_name}
        self.drain_refused = {vm: why for vm, why in self.drain_refused.items() if vm in by_name}
        mode = spec.scaling.scale_in.drain.mode
        # (re)confirm the drain with every draining VM's agent: idempotent, and it resumes a drain an
        # earlier operator process recorded but could not tell the agent about, or switches a draining
        # agent to a mode the spec changed to. Never a VM this round returns to service. A drained VM this
        # round deletes is confirmed only if this process never was (it may be a drain its agent refuses:
        # such a VM never began to drain and is kept).
        draining = {s.name for s in states if s.phase is model.VMPhase.DRAINING} | set(decision.drain)
        deleting = set(decision.delete)
        to_confirm = sorted(
            n
            for n in draining - set(decision.return_to_service)
            if (n not in self.drain_confirmed if n in deleting else self.drain_confirmed.get(n) != mode)
        )
        # a token Secret is read only in a round that talks to that agent, not in every round
        tokens: dict[str, str | None] = {}  # without a token (its Secret unreadable) an agent is not talked to
        with self._step("drain_tokens", event):
            tokens = await self._drain_tokens(rt, spec.workload.drain_token, [*decision.return_to_service, *to_confirm])
        for name in decision.return_to_service:
            if name not in tokens:
                continue  # it stays draining: returned in a round that can tell its agent
            token = tokens[name]
            await self._set_draining(rt, spec, by_name[name].ip, name, draining=False, token=token, event=event)
            await rt.kube.patch_vm(self.namespace, name, _annotate(ANNOTATION_DRAINING_SINCE, None))
            self.expectations.returned[name] = now
            self.drain_confirmed.pop(name, None)
            self.drain_refused.pop(name, None)
            count("return", 1)
            event("Normal", str(Reason.SCALED_UP), f"{decision.message}; returned draining VM {name} to service")
        for name in decision.drain:
            # the annotation first: it is the restart-safe record that this VM is leaving
            await rt.kube.patch_vm(
                self.namespace, name, _annotate(ANNOTATION_DRAINING_SINCE, fleet_mod.format_time(now))
            )
            self.expectations.draining[name] = now
            count("drain", 1)
            held = _held(by_name[name].sessions)
            event("Normal", str(Reason.DRAINING), f"{decision.message}; draining VM {name} ({mode}){held}")
        for name in to_confirm:
            if name not in tokens:
                continue  # confirmed in a later round; its annotation already records the drain
            token = tokens[name]
            if await self._set_draining(rt, spec, by_name[name].ip, name, draining=True, token=token, event=event):
                self.drain_confirmed[name] = mode
        for name in decision.delete:
            if name in self.drain_refused and by_name[name].phase is model.VMPhase.DRAINING:
                continue  # its agent never began this drain: not drained, and its users never told to go
            await rt.kube.delete_vm(self.namespace, name)
            if _timed_out(by_name[name], now, spec.scaling.scale_in.drain.timeout_seconds):
                telemetry.DRAIN_TIMEOUTS.labels(self.namespace, self.name).inc()
            self.expectations.deleted[name] = now
            self.drain_confirmed.pop(name, None)
            self.drain_refused.pop(name, None)
            self.tokens.pop(name, None)
            count("delete", 1)
            event("Normal", str(Reason.DELETED), f"deleted VM {name}: {decision.message}")

    async def _create(
        self, rt: Runtime, was: WebAppScaling, spec: Spec, count: int, *, warm: bool, now: float, event: EventSink
    ) -> int:
        created = 0
        for _ in range(count):
            for _attempt in range(5):  # a name collision is possible, five in a row is not
                name = naming.vm_name(self.name)
                try:
                    vm = await rt.kube.create_vm(resources.build_virtualmachine(was, name, warm=warm))
                except AlreadyExists:
                    continue
                except ApiException as error:
                    telemetry.CREATE_FAILURES.labels(self.namespace, self.name).inc()
                    event("Warning", str(Reason.CREATE_FAILED), f"creating VM {name}: {_api_message(error)}")
                    if error.status in (400, 403, 422):  # retrying cannot help: a person must grant or fix
                        self.create_refused = _create_refused(self.namespace, name, error)
                    return created
                self.create_refused = None
                # expected at once: a failure below must not make the next round create another VM
                (self.expectations.created_warm if warm else self.expectations.created)[name] = now
                created += 1
                if spec.workload.drain_token is None:  # the VM's own token; its clone takes longer
                    await self._create_token(rt, was, vm, event)
                break
        return created

    async def _create_token(self, rt: Runtime, was: WebAppScaling, vm: Mapping[str, Any], event: EventSink) -> None:
        name = vm["metadata"]["name"]
        token = secrets.token_urlsafe(32)
        try:
            await rt.kube.create_secret(resources.build_drain_token_secret(was, vm, token))
        except ApiException as error:
            event("Warning", str(Reason.CREATE_FAILED), f"creating the drain token of VM {name}: {_api_message(error)}")
            self._failed("drain_tokens", error, None, f"creating the drain token Secret of VM {name}")
            return
        self.tokens[name] = token

    async def _drain_tokens(self, rt: Runtime, ref: SecretKeyRef | None, vms: Iterable[str]) -> dict[str, str | None]:
        """The bearer token for each of these VMs' agents: its own (the Secret the operator made for it,
        cached once read) or, with spec.sessions.agent.drainTokenSecretRef, the user's Secret — which
        admission checked its writer may read — read once for all of them."""
        vms = list(vms)
        if ref is not None:
            shared = await rt.kube.read_secret_key(self.namespace, ref.name, ref.key) if vms else None
            return dict.fromkeys(vms, shared)
        for vm in vms:
            if vm not in self.tokens:
                secret = naming.drain_token_secret_name(vm)
                token = await rt.kube.read_secret_key(self.namespace, secret, DRAIN_TOKEN_KEY)
                if token is not None:
                    self.tokens[vm] = token
        return {vm: self.tokens.get(vm) for vm in vms}

    async def _set_draining(
        self,
        rt: Runtime,
        spec: Spec,
        ip: str | None,
        name: str,
        *,
        draining: bool,
        token: str | None,
        event: EventSink,
    ) -> bool:
        if ip is None:
            return False  # no VMI address (stopped VM): nobody to tell, nothing routed to it either
        agent = spec.scaling.sessions.agent
        mode = spec.scaling.scale_in.drain.mode
        url = fleet_mod.agent_url(ip, agent.port, agent.drain_path)
        try:
            await rt.drainer.set_draining(
                url,
                draining=draining,
                mode=mode,
                token=token,
                request_timeout=spec.scaling.sessions.scrape_timeout_seconds,
            )
        except DrainModeUnsupported as error:
            message = (
                f"VM {name}: {error}; it is not drained and is kept until its agent accepts a drain: set "
                "spec.scaleIn.drain.mode and spec.sessions.agent.source to what the VMs' agents run"
            )
            if self.drain_refused.get(name) != message:
                event("Warning", str(Reason.DRAIN_MODE_UNSUPPORTED), message)
            self.drain_refused[name] = message
            return False
        except DrainError as error:
            event("Warning", str(Reason.DRAIN_FAILED), f"VM {name}: {error}")
            return False
        self.drain_refused.pop(name, None)
        return True

    def _count_action(self, action: str, n: int) -> None:
        telemetry.DECISIONS.labels(self.namespace, self.name, action).inc(n)


def _annotate(key: str, value: str | None) -> dict[str, Any]:
    """A merge patch setting (or, with None, removing) one annotation."""
    return {"metadata": {"annotations": {key: value}}}


def _timed_out(vm: model.VMState, now: float, timeout_seconds: int) -> bool:
    """A draining VM deleted because its drain timeout expired, not because its agent counted zero sessions:
    its users (or, with no count, possibly some) lose their sessions."""
    if vm.phase is not model.VMPhase.DRAINING or vm.draining_since is None:
        return False
    return vm.sessions != 0 and now - vm.draining_since >= timeout_seconds


def _held(sessions: float | None) -> str:
    return "" if sessions is None else f", {sessions:.0f} sessions held"


def _describe_route(was: WebAppScaling, route: Mapping[str, Any]) -> str:
    """RouteReady's message: what the applied HTTPRoute does, in a line."""
    spec = route["spec"]
    parents = ", ".join(
        f"{p.get('kind', 'Gateway')} {p.get('namespace', was.namespace)}/{p['name']}" for p in spec["parentRefs"]
    )
    [rule] = spec["rules"]
    retry = rule.get("retry")
    retries = f"retry on {', '.join(map(str, retry['codes']))} up to {retry['attempts']} times" if retry else "no retry"
    cookie = (rule.get("sessionPersistence") or {}).get("cookie")
    pinned = f"session cookie {cookie['name']}" if cookie else "no session persistence"
    return f"HTTPRoute {was.namespace}/{route['metadata']['name']} applied: parents {parents}; {retries}; {pinned}"


def _create_refused(namespace: str, name: str, error: ApiException) -> str:
    """Stalled's message for a VM create the apiserver refused: what it said, and what a person does."""
    what = f"the apiserver refused to create VM {namespace}/{name} (HTTP {error.status}): {_api_message(error)}"
    if error.status == 403:
        return (
            f"{what}; grant the operator's service account 'create' on virtualmachines (kubevirt.io) in "
            f"namespace {namespace} (docs/rbac.md)"
        )
    return f"{what}; fix spec.vmTemplate so the VirtualMachine it renders is accepted"


def _transport_error(error: BaseException) -> bool:
    """The official client's own transport errors (urllib3's MaxRetryError and kin, raised when the
    apiserver cannot be reached): expected during an outage, worth a line, not a traceback."""
    return type(error).__module__.split(".")[0] == "urllib3"


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
