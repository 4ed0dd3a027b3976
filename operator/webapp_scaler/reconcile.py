"""One WebAppScaling's control loop: observe → scrape → decide → act → report, once per scrape interval.

The decision is the engine's (`engine.decide`, the same function the benchmark runs); this module only
gathers its inputs from the cluster and carries out its output. Everything restart-relevant is read
from the cluster each round (VMs, their annotations, VMIs, DataVolumes); the in-memory parts (moving-
average samples, stabilization history, expectations) rebuild themselves within one window.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes.client.exceptions import ApiException

from webapp_scaler import fleet as fleet_mod
from webapp_scaler import golden_image, model, naming, resources, status, telemetry
from webapp_scaler.constants import (
    ANNOTATION_DRAINING_SINCE,
    ANNOTATION_STARTED_AT,
    ANNOTATION_WARM,
    Reason,
)
from webapp_scaler.engine.decide import decide
from webapp_scaler.expectations import Expectations
from webapp_scaler.k8s import AlreadyExists, Kube
from webapp_scaler.sources.agent_http import AgentHTTPSource
from webapp_scaler.sources.base import Reading
from webapp_scaler.sources.drain_client import DrainError, set_draining

# event(type, reason, message): posts a Kubernetes Event on the WebAppScaling
EventSink = Callable[[str, str, str], None]
GOLDEN_RECHECK_SECONDS = 30.0  # once ready, the golden image is re-read this often
NETWORK_REAPPLY_SECONDS = 300.0  # Service/Ingress re-applied at least this often (repairs manual edits)


@dataclass
class Runtime:
    """Process-wide clients, shared by every WebAppScaling's loop."""

    kube: Kube
    http: aiohttp.ClientSession
    clock: Callable[[], float] = time.time

    @property
    def source(self) -> AgentHTTPSource:
        return AgentHTTPSource(self.http)


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

    async def round(self, rt: Runtime, body: Mapping[str, Any], fleet: fleet_mod.Fleet, event: EventSink) -> None:
        started = time.monotonic()
        now = rt.clock()
        raw_spec = body.get("spec") or {}
        spec: model.ScalingSpec | None
        spec_error: str | None = None
        try:
            spec = model.ScalingSpec.from_spec(raw_spec)
        except ValueError as error:
            spec, spec_error = None, str(error)

        golden = await self._golden_image(rt, body, now)
        await self._network(rt, body, now)

        readings: list[Reading] = []
        decision: model.Decision | None = None
        states = fleet.states([])
        if spec is not None:
            agent = spec.sessions.agent
            readings = await rt.source.read(
                fleet.scrape_targets(agent), metric=agent.metric, scrape_timeout=spec.sessions.scrape_timeout_seconds
            )
            self._record_scrapes(readings)
            states = self.expectations.apply(fleet.states(readings), now)
            decision = decide(now, spec, states, self.memory)
            self.memory = decision.memory
            await self._act(rt, body, spec, decision, golden, fleet, states, event, now)

        conditions = status.conditions(
            golden=golden, readings=readings, states=states, decision=decision, spec=spec, spec_error=spec_error
        )
        previous = self.last_status if self.last_status is not None else (body.get("status") or {})
        new_status = status.build_status(
            name=self.name,
            generation=int(body.get("metadata", {}).get("generation", 0)),
            fleet=fleet,
            states=states,
            readings=readings,
            decision=decision,
            condition_list=conditions,
            previous=previous,
            now=now,
        )
        if decision is not None and decision.desired != previous.get("desiredReplicas"):
            new_status["lastScaleTime"] = fleet_mod.format_time(now, precise=False)
            new_status["lastScaleReason"] = decision.message
        else:
            for key in ("lastScaleTime", "lastScaleReason"):
                if key in previous:
                    new_status[key] = previous[key]
        if new_status != self.last_status:
            await rt.kube.patch_status(self.namespace, self.name, new_status)
            self.last_status = new_status
        self._record_gauges(new_status, decision)
        telemetry.RECONCILE_SECONDS.labels(self.namespace, self.name).observe(time.monotonic() - started)

    # ---- observe -----------------------------------------------------------------------------------
    async def _golden_image(self, rt: Runtime, body: Mapping[str, Any], now: float) -> golden_image.GoldenImageVerdict:
        if self.golden is not None and self.golden.ready and now - self.golden_checked_at < GOLDEN_RECHECK_SECONDS:
            return self.golden
        image = (body.get("spec") or {}).get("goldenImage") or {}
        kind, name = image.get("kind", "DataVolume"), image.get("name", "")
        namespace = image.get("namespace") or self.namespace
        try:
            source = await rt.kube.get_golden_image(kind, namespace, name)
            readable = True
        except ApiException as error:
            if error.status != 403:
                raise
            source, readable = None, False
        clone_allowed = True
        if readable and source is not None and namespace != self.namespace:
            clone_allowed = await rt.kube.can_clone_from(namespace)
        self.golden = golden_image.evaluate(
            kind, namespace, name, source, readable=readable, clone_allowed=clone_allowed
        )
        self.golden_checked_at = now
        return self.golden

    async def _network(self, rt: Runtime, body: Mapping[str, Any], now: float) -> None:
        generation = int(body.get("metadata", {}).get("generation", 0))
        applied = self.network_applied
        if applied and applied[0] == generation and now - applied[1] < NETWORK_REAPPLY_SECONDS:
            return
        await rt.kube.apply(resources.build_service(body))
        ingress = resources.build_ingress(body)
        if ingress is not None:
            await rt.kube.apply(ingress)
        else:
            await rt.kube.delete_ingress(self.namespace, naming.ingress_name(self.name))
        self.network_applied = (generation, now)

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
        body: Mapping[str, Any],
        spec: model.ScalingSpec,
        decision: model.Decision,
        golden: golden_image.GoldenImageVerdict,
        fleet: fleet_mod.Fleet,
        states: list[model.VMState],
        event: EventSink,
        now: float,
    ) -> None:
        count = self._count_action
        if decision.create or decision.create_warm:
            if not golden.ready:
                event("Warning", str(golden.reason), f"not creating VMs: {golden.message}")
            else:
                created = await self._create(rt, body, decision.create, warm=False, now=now, event=event)
                if created:
                    count("create", created)
                    event("Normal", str(Reason.SCALED_UP), f"{decision.message}; created {created} VM(s)")
                warm = await self._create(rt, body, decision.create_warm, warm=True, now=now, event=event)
                if warm:
                    count("create_warm", warm)
                    event("Normal", "WarmPoolFilled", f"created {warm} stopped VM(s) for the warm pool")
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
        ips = {vm.name: fleet.vmis[vm.name].ip for vm in fleet.vms if vm.name in fleet.vmis}
        # (re)confirm the drain with every draining VM's agent: idempotent, and it resumes a drain an
        # earlier operator process recorded but could not tell the agent about
        draining_now = {n for n, p in fleet.phases().items() if p == model.VMPhase.DRAINING} | set(decision.drain)
        to_confirm = sorted(draining_now - self.drain_confirmed - set(decision.delete))
        # the token Secret is read only in a round that talks to an agent, not in every round
        token = await self._drain_token(rt, body) if decision.return_to_service or to_confirm else None
        for name in decision.return_to_service:
            await self._set_draining(rt, spec, ips.get(name), name, draining=False, token=token, event=event)
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
            sessions = next((s.sessions for s in states if s.name == name), None)
            event("Normal", str(Reason.DRAINING), f"{decision.message}; draining VM {name}{_held(sessions)}")
        for name in to_confirm:
            if await self._set_draining(rt, spec, ips.get(name), name, draining=True, token=token, event=event):
                self.drain_confirmed.add(name)
        for name in decision.delete:
            await rt.kube.delete_vm(self.namespace, name)
            self.expectations.deleted[name] = now
            self.drain_confirmed.discard(name)
            count("delete", 1)
            event("Normal", str(Reason.DELETED), f"deleted VM {name}: {decision.message}")

    async def _create(
        self, rt: Runtime, body: Mapping[str, Any], count: int, *, warm: bool, now: float, event: EventSink
    ) -> int:
        created = 0
        for _ in range(count):
            for _attempt in range(5):  # a name collision is possible, five in a row is not
                name = naming.vm_name(self.name)
                try:
                    await rt.kube.create_vm(resources.build_virtualmachine(body, name, warm=warm))
                except AlreadyExists:
                    continue
                except ApiException as error:
                    event("Warning", str(Reason.CREATE_FAILED), f"creating VM {name}: {_api_message(error)}")
                    return created
                self.expectations.created[name] = now
                created += 1
                break
        return created

    async def _drain_token(self, rt: Runtime, body: Mapping[str, Any]) -> str | None:
        ref = ((body.get("spec") or {}).get("sessions") or {}).get("agent", {}).get("drainTokenSecretRef")
        if not ref:
            return None
        return await rt.kube.read_secret_key(self.namespace, ref["name"], ref.get("key", "token"))

    async def _set_draining(
        self,
        rt: Runtime,
        spec: model.ScalingSpec,
        ip: str | None,
        name: str,
        *,
        draining: bool,
        token: str | None,
        event: EventSink,
    ) -> bool:
        if ip is None:
            return False  # no VMI address (stopped VM): nobody to tell, nothing routed to it either
        agent = spec.sessions.agent
        url = fleet_mod.agent_url(ip, agent.port, agent.drain_path)
        try:
            await set_draining(
                rt.http, url, draining=draining, token=token, request_timeout=spec.sessions.scrape_timeout_seconds
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
