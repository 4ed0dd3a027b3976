"""kopf registration only: watch indexes of our VMs, and one loop per WebAppScaling that parses it and
calls the reconciler every scrape interval. Everything else lives in `reconcile`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import kopf

from webapp_scaler import fleet, naming, telemetry, webappscaling
from webapp_scaler.constants import CDI_GROUP, GROUP, KUBEVIRT_GROUP, LABEL_SCALING, PLURAL, VERSION
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
    memo.http = aiohttp.ClientSession()
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
            elapsed = asyncio.get_running_loop().time() - started
            await stopped.wait(max(0.0, interval - elapsed))
    finally:
        if stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            memo.reconcilers.pop(key, None)
            telemetry.forget(namespace, name)
