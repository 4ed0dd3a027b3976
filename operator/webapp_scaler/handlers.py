"""kopf registration only: watch indexes of our VMs, a watch of the Services, Ingresses and HTTPRoutes we
control, and one loop per WebAppScaling that parses it and calls the reconciler every scrape interval
(and repairs those objects in between when the watch says they changed). Everything else lives in
`reconcile`."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from webapp_scaler import fleet, naming, telemetry, webappscaling
from webapp_scaler.constants import (
    API_VERSION,
    CDI_GROUP,
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    GROUP,
    KIND,
    KUBEVIRT_GROUP,
    LABEL_SCALING,
    PLURAL,
    VERSION,
)
from webapp_scaler.k8s import Kube
from webapp_scaler.reconcile import Reconciler, Runtime
from webapp_scaler.sources.agent_http import AgentHTTPSource
from webapp_scaler.sources.drain_client import AgentDrainClient

ERROR_BACKOFF_SECONDS = 5.0
DEFAULT_INTERVAL = webappscaling.SessionsSpec().scrape_interval_seconds  # the pace while the spec is invalid


@kopf.on.startup()
async def webappscaler_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING  # our own Events say what happened; kopf's would be noise
    # no limit on the connection pool: AgentHTTPSource bounds the scrapes in flight itself, outside the deadline
    memo.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    config = memo.get("config")  # webapp_scaler.settings.Config, handed over by the runner
    memo.runtime = Runtime(
        kube=Kube.from_environment(),
        source=AgentHTTPSource(memo.http),
        drainer=AgentDrainClient(memo.http),
        own_addresses=config.own_addresses if config else frozenset(),
    )
    memo.reconcilers = {}


@kopf.on.cleanup()
async def webappscaler_cleanup(memo: kopf.Memo, **_: Any) -> None:
    await memo.http.close()


@kopf.on.probe(id="webappscalings")
def webappscaler_probe(memo: kopf.Memo, **_: Any) -> int:
    return len(memo.reconcilers)


@kopf.index(KUBEVIRT_GROUP, "v1", "virtualmachines", labels={LABEL_SCALING: kopf.PRESENT})
def vm_index(body: kopf.Body, **_: Any) -> dict[tuple[str, str], fleet.VMRecord]:
    record = fleet.vm_record(body)
    return {(record.namespace, record.scaling): record}


@kopf.index(KUBEVIRT_GROUP, "v1", "virtualmachineinstances", labels={LABEL_SCALING: kopf.PRESENT})
def vmi_index(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[tuple[str, str], fleet.VMIRecord]:
    record = fleet.vmi_record(body)
    return {(record.namespace, labels[LABEL_SCALING]): record}


@kopf.index("", "v1", "pods", labels={LABEL_SCALING: kopf.PRESENT, "kubevirt.io": "virt-launcher"})
def pod_index(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[tuple[str, str], fleet.PodRecord]:
    record = fleet.pod_record(body)
    return {(record.namespace, labels[LABEL_SCALING]): record}


@kopf.index(CDI_GROUP, "v1beta1", "datavolumes", labels={LABEL_SCALING: kopf.PRESENT})
def dv_index(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[tuple[str, str], fleet.DVRecord]:
    record = fleet.dv_record(body)
    return {(record.namespace, labels[LABEL_SCALING]): record}


def _controller(meta: Mapping[str, Any]) -> str | None:
    """The name of the WebAppScaling whose controller ownerReference the object carries, else None."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == KIND and ref.get("apiVersion") == API_VERSION:
            return str(ref.get("name") or "") or None
    return None


def _is_controlled(meta: kopf.Meta, **_: Any) -> bool:
    return _controller(meta) is not None


def _owned_object_handler(kind: str) -> Any:
    def owned_object_event(
        type: str | None, meta: kopf.Meta, namespace: str | None, name: str | None, memo: kopf.Memo, **_: Any
    ) -> None:
        """A Service, Ingress or HTTPRoute a WebAppScaling controls was changed or deleted (not the initial
        listing, type None): its owner's loop repairs it now instead of at the next periodic re-apply."""
        owner = _controller(meta)
        if type not in ("MODIFIED", "DELETED") or owner is None or namespace is None or name is None:
            return
        reconciler = memo.get("reconcilers", {}).get(naming.key(namespace, owner))
        if reconciler is not None:
            reconciler.owned_object_changed(kind, name, deleted=type == "DELETED")

    return owned_object_event


# watched by their controller ownerReference, not our labels: a person may remove the labels too
for _group, _version, _plural, _kind in (
    ("", "v1", "services", "Service"),
    ("networking.k8s.io", "v1", "ingresses", "Ingress"),
    (GATEWAY_GROUP, GATEWAY_VERSION, "httproutes", "HTTPRoute"),  # without Gateway API kopf only warns
):
    kopf.on.event(_group, _version, _plural, when=_is_controlled, id=f"owned-{_plural}")(_owned_object_handler(_kind))


def spread(key: str) -> float:
    """A fraction of an interval in [0, 0.5), the same for the same object: added once, after the first
    round, so that a thousand loops started by one operator start do not scrape and patch in lockstep."""
    return (zlib.crc32(key.encode()) % 1000) / 2000


async def _pause(reconciler: Reconciler, stopped: kopf.DaemonStopped, deadline: float) -> bool:
    """Wait until `deadline` (the next round), the daemon's stop, or a repair the watch asked for; True
    for the repair (then clear it and wait on), False for the other two."""
    loop = asyncio.get_running_loop()
    due = reconciler.repair_due
    left = deadline - loop.time()
    if due.is_set():
        return True
    if left <= 0:
        return False

    async def until_stopped() -> None:
        await stopped.wait(left)

    waits = [asyncio.ensure_future(due.wait()), asyncio.ensure_future(until_stopped())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return due.is_set() and not stopped


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def webappscaling_loop(
    body: kopf.Body,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
    **kwargs: Any,  # kopf passes the indexes by their names: vm_index, vmi_index, dv_index, pod_index
) -> None:
    assert namespace is not None  # WebAppScaling is namespaced
    key = naming.key(namespace, name)
    reconciler = memo.reconcilers.setdefault(key, Reconciler(namespace, name))

    def event(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message)
        level = logging.INFO if type_ == "Normal" else logging.WARNING
        logger.log(level, message, extra={"reason": reason})

    first_round = True
    try:
        while not stopped:
            was = webappscaling.parse(body)  # kopf keeps `body` current: parsed afresh every round
            interval = float(
                was.spec.scaling.sessions.scrape_interval_seconds
                if isinstance(was, webappscaling.WebAppScaling)
                else DEFAULT_INTERVAL
            )
            started = asyncio.get_running_loop().time()
            index_key = (namespace, name)
            observed = fleet.Fleet.of(
                *(kwargs[i].get(index_key, []) for i in ("vm_index", "vmi_index", "dv_index", "pod_index"))
            )
            try:
                await reconciler.round(memo.runtime, was, observed, event)
            except Exception as error:  # one failed round must not end the loop; the next retries
                logger.exception(f"reconcile round failed: {error}")
                interval = max(interval, ERROR_BACKOFF_SECONDS)
            deadline = started + interval
            if first_round:  # spread the rounds of objects whose loops started together (a restart)
                deadline += interval * spread(key)
                first_round = False
            while not stopped and await _pause(reconciler, stopped, deadline):
                if body.metadata.get("deletionTimestamp"):
                    reconciler.repair_due.clear()  # else the wait returns at once, again and again
                    continue  # the garbage collector takes what it owns: nothing is made again now
                try:
                    await reconciler.repair(memo.runtime, webappscaling.parse(body), event)
                except Exception as error:  # the next round retries, and reports
                    logger.exception(f"repairing the Service, Ingress or HTTPRoute failed: {error}")
    finally:
        if stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            memo.reconcilers.pop(key, None)
            telemetry.forget(namespace, name)
