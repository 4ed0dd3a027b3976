"""One WebAppScaling's control loop: observe → scrape → decide → act → report, once per scrape interval.

The decision is the engine's (`engine.decide`, the same function the benchmark runs); this module only
gathers its inputs from the cluster and carries out its output. Everything restart-relevant is read
from the cluster each round (VMs, their annotations, VMIs, DataVolumes); the in-memory parts (moving-
average samples, stabilization history, expectations) rebuild themselves within one window.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from webapp_scaler import fleet as fleet_mod
from webapp_scaler import golden_image, model, naming, resources, status, telemetry
from webapp_scaler.constants import (
    ANNOTATION_DRAINING_SINCE,
    ANNOTATION_STARTED_AT,
    ANNOTATION_WARM,
    DRAIN_TOKEN_KEY,
    Reason,
)
from webapp_scaler.engine.decide import decide
from webapp_scaler.expectations import Expectations
from webapp_scaler.k8s import AlreadyExists, Kube
from webapp_scaler.sources.base import DrainControl, DrainError, Reading, SessionSource
from webapp_scaler.webappscaling import GoldenImageSpec, InvalidWebAppScaling, SecretKeyRef, Spec, WebAppScaling

# event(type, reason, message): posts a Kubernetes Event on the WebAppScaling
EventSink = Callable[[str, str, str], None]
GOLDEN_RECHECK_SECONDS = 30.0  # once ready, the golden image is re-read this often
NETWORK_REAPPLY_SECONDS = 300.0  # Service/Ingress re-applied at least this often (repairs manual edits)


@dataclass
class Runtime:
    """Process-wide clients, shared by every WebAppScaling's loop. Each is an interface, so unit tests
    drive a whole round against fakes of our own wrappers (`Kube`, `SessionSource`, `DrainControl`)."""

    kube: Kube
    source: SessionSource
    drainer: DrainControl
    clock: Callable[[], float] = time.time
    own_addresses: frozenset[str] = frozenset()  # never a scrape or drain target


@dataclass
class Reconciler:
    """The memory of one WebAppScaling between rounds; losing it (restart) is safe."""

    namespace: str
    name: str
    memory: model.EngineMemory = field(default_factory=model.EngineMemory)
    expectations: Expectations = field(default_factory=Expectations)
    drain_confirmed: set[str] = field(default_factory=set)
    last_status: dict[str, Any] | None = None
    golden: golden_image.GoldenImageVerdict | None = None
    golden_checked_at: float = float("-inf")
    network_applied: tuple[int, float] | None = None  # (generation, when)
    conflicts: list[str] = field(default_factory=list)  # objects of another owner in our names
    untrusted: dict[str, str] = field(default_factory=dict)  # VM → why its address is not used
    tokens: dict[str, str] = field(default_factory=dict)  # VM → its own drain token, once known

    async def round(
        self, rt: Runtime, was: WebAppScaling | InvalidWebAppScaling, fleet: fleet_mod.Fleet, event: EventSink
    ) -> None:
        """One round on one view of the fleet: the states are computed once, corrected once by the
        expectations, then scraped, decided on, acted on and reported from that same list."""
        started = time.monotonic()
        now = rt.clock()
        golden: golden_image.GoldenImageVerdict | None = None
        readings: list[Reading] = []
        decision: model.Decision | None = None
        states = self.expectations.apply(fleet.states(rt.own_addresses), now)
        untrusted = fleet.address_problems(rt.own_addresses)
        for name in sorted(untrusted.keys() - self.untrusted.keys()):
            event("Warning", str(Reason.UNTRUSTED_ADDRESS), f"VM {name}: {untrusted[name]}; not scraped, not drained")
        self.untrusted = untrusted
        if isinstance(was, WebAppScaling):
            spec = was.spec
            golden = await self._golden_image(rt, spec.workload.golden_image, now)
            await self._network(rt, was, now, event)
            sessions = spec.scaling.sessions
            readings = await rt.source.read(
                fleet_mod.scrape_targets(states, sessions.agent),
                metric=sessions.agent.metric,
                scrape_timeout=sessions.scrape_timeout_seconds,
            )
            self._record_scrapes(readings)
            states = fleet_mod.with_sessions(states, readings)
            decision = decide(now, spec.scaling, states, self.memory)
            self.memory = decision.memory
            await self._act(rt, was, spec, decision, golden, states, event, now)

        conditions = status.conditions(
            golden=golden,
            readings=readings,
            states=states,
            decision=decision,
            spec=was.spec.scaling if isinstance(was, WebAppScaling) else None,
            spec_error=None if isinstance(was, WebAppScaling) else was.error,
            conflicts=self.conflicts,
            untrusted=self.untrusted,
        )
        new_status = status.build_status(
            name=self.name,
            generation=was.generation,
            states=states,
            scraped=bool(readings),
            decision=decision,
            condition_list=conditions,
            previous=self.last_status if self.last_status is not None else was.status,
            now=now,
        )
        if new_status != self.last_status:
            await rt.kube.patch_status(self.namespace, self.name, new_status)
            self.last_status = new_status
        self._record_gauges(new_status, decision)
        telemetry.RECONCILE_SECONDS.labels(self.namespace, self.name).observe(time.monotonic() - started)

    # ---- observe -----------------------------------------------------------------------------------
    async def _golden_image(self, rt: Runtime, image: GoldenImageSpec, now: float) -> golden_image.GoldenImageVerdict:
        if self.golden is not None and self.golden.ready and now - self.golden_checked_at < GOLDEN_RECHECK_SECONDS:
            return self.golden
        try:
            source = await rt.kube.get_golden_image(image.kind, image.namespace, image.name)
            readable = True
        except ApiException as error:
            if error.status != 403:
                raise
            source, readable = None, False
        clone_allowed = True
        if readable and source is not None and image.namespace != self.namespace:
            clone_allowed = await rt.kube.can_clone_from(image.namespace)
        self.golden = golden_image.evaluate(
            image.kind, image.namespace, image.name, source, readable=readable, clone_allowed=clone_allowed
        )
        self.golden_checked_at = now
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
        found = await rt.kube.get_network_object("Service", self.namespace, service["metadata"]["name"])
        if self._ours_or_absent(was, service, found, conflicts):
            await rt.kube.apply(service)
        ingress_name = naming.ingress_name(self.name)
        found = await rt.kube.get_network_object("Ingress", self.namespace, ingress_name)
        ingress = resources.build_ingress(was)
        if ingress is not None:
            if self._ours_or_absent(was, ingress, found, conflicts):
                await rt.kube.apply(ingress)
        elif found is not None and resources.controlled_by(found, was):
            await rt.kube.delete_ingress(self.namespace, ingress_name)
        if conflicts and conflicts != self.conflicts:
            event("Warning", str(Reason.NAME_CONFLICT), "; ".join(conflicts))
        self.conflicts = conflicts
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

    def _record_scrapes(self, readings: list[Reading]) -> None:
        for reading in readings:
            telemetry.SCRAPE_SECONDS.labels(self.namespace, self.name).observe(reading.seconds)
            if reading.sessions is None:
                telemetry.SCRAPE_ERRORS.labels(self.namespace, self.name).inc()

    def _record_gauges(self, new_status: Mapping[str, Any], decision: model.Decision | None) -> None:
        labels = (self.namespace, self.name)
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
        # (re)confirm the drain with every draining VM's agent: idempotent, and it resumes a drain an
        # earlier operator process recorded but could not tell the agent about. Never a VM this round
        # returns to service or deletes.
        draining = {s.name for s in states if s.phase is model.VMPhase.DRAINING} | set(decision.drain)
        leaving_drain = set(decision.return_to_service) | set(decision.delete)
        to_confirm = sorted(draining - leaving_drain - self.drain_confirmed)
        # a token Secret is read only in a round that talks to that agent, not in every round
        tokens = await self._drain_tokens(rt, spec.workload.drain_token, [*decision.return_to_service, *to_confirm])
        for name in decision.return_to_service:
            token = tokens[name]
            await self._set_draining(rt, spec, by_name[name].ip, name, draining=False, token=token, event=event)
            await rt.kube.patch_vm(self.namespace, name, _annotate(ANNOTATION_DRAINING_SINCE, None))
            self.expectations.returned[name] = now
            self.drain_confirmed.discard(name)
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
            event("Normal", str(Reason.DRAINING), f"{decision.message}; draining VM {name}{held}")
        for name in to_confirm:
            token = tokens[name]
            if await self._set_draining(rt, spec, by_name[name].ip, name, draining=True, token=token, event=event):
                self.drain_confirmed.add(name)
        for name in decision.delete:
            await rt.kube.delete_vm(self.namespace, name)
            self.expectations.deleted[name] = now
            self.drain_confirmed.discard(name)
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
                    event("Warning", str(Reason.CREATE_FAILED), f"creating VM {name}: {_api_message(error)}")
                    return created
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
        url = fleet_mod.agent_url(ip, agent.port, agent.drain_path)
        try:
            await rt.drainer.set_draining(
                url, draining=draining, token=token, request_timeout=spec.scaling.sessions.scrape_timeout_seconds
            )
        except DrainError as error:
            event("Warning", str(Reason.DRAIN_FAILED), f"VM {name}: {error}")
            return False
        return True

    def _count_action(self, action: str, n: int) -> None:
        telemetry.DECISIONS.labels(self.namespace, self.name, action).inc(n)


def _annotate(key: str, value: str | None) -> dict[str, Any]:
    """A merge patch setting (or, with None, removing) one annotation."""
    return {"metadata": {"annotations": {key: value}}}


def _held(sessions: float | None) -> str:
    return "" if sessions is None else f" ({sessions:.0f} sessions left)"


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
