"""What a load balancer follows: the Service's endpoints (or, on loopback, the VMIs), as backends.

An ingress controller reads the EndpointSlices of the Service it routes to; the followers here do the same,
in a thread, and hand every change to the load balancer as a sorted list of `Backend`s. Whether a
not-ready backend is kept (HAProxy's drain support) or dropped (nginx, Traefik) is the load balancer's
business, not the follower's: it reports readiness as the EndpointSlice says it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch

log = logging.getLogger("webapp_scaler_dev.loadbalancers")

LAUNCHER_POD = re.compile(r"virt-launcher-(?P<vm>.+)-[a-z0-9]{5}")


@dataclass(frozen=True, order=True)
class Backend:
    """One endpoint of the Service: `name` is the VM's name, used as server name and sticky-cookie value."""

    name: str
    address: str
    port: int
    ready: bool


def vm_name_of_pod(pod_name: str) -> str:
    """`virt-launcher-shop-x7k2p-abcde` → `shop-x7k2p`: servers are named after their VM."""
    match = LAUNCHER_POD.fullmatch(pod_name)
    return match.group("vm") if match else pod_name


def backends_from_slices(slices: Mapping[str, Any], port_name: str | None = None) -> list[Backend]:
    """EndpointSlice objects (kubernetes client models) → backends, one per endpoint address.

    A `ready` condition left unset means ready, as the EndpointSlice API defines it."""
    backends = []
    for item in slices.values():
        ports = [p for p in item.ports or [] if port_name is None or p.name == port_name]
        if not ports or ports[0].port is None:
            continue
        for endpoint in item.endpoints or []:
            conditions = endpoint.conditions
            ready = conditions is None or conditions.ready is None or bool(conditions.ready)
            pod = endpoint.target_ref.name if endpoint.target_ref is not None else None
            for address in endpoint.addresses or []:
                name = vm_name_of_pod(pod) if pod else address
                backends.append(Backend(name, address, int(ports[0].port), ready))
    return backends


def backends_from_vmis(vmis: Mapping[str, Mapping[str, Any]], port: int) -> list[Backend]:
    """VMI objects (dicts) → backends: the loopback fallback, where pods carry no IP for EndpointSlices."""
    backends = []
    for name, vmi in vmis.items():
        status = vmi.get("status") or {}
        interfaces = status.get("interfaces") or []
        address = interfaces[0].get("ipAddress") if interfaces else None
        if not address or status.get("phase") != "Running":
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        backends.append(Backend(name, address, port, ready))
    return backends


class Follower:
    """List, then watch from the list's resourceVersion; relist after any error. Runs in a thread."""

    def __init__(self, on_change: Callable[[list[Backend]], None]) -> None:
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._list_and_watch()
            except Exception as error:  # the apiserver going away at teardown, a 410 Gone, ...
                if self._stop.is_set():
                    return
                self.errors += 1
                log.warning("watch failed, relisting: %s", error)
                self._stop.wait(1.0)

    def _list_and_watch(self) -> None:
        raise NotImplementedError


class EndpointSliceWatcher(Follower):
    """Backends from the EndpointSlices of one Service, as an ingress controller reads them."""

    def __init__(
        self, api: client.ApiClient, namespace: str, service: str, on_change: Callable[[list[Backend]], None]
    ) -> None:
        super().__init__(on_change)
        self.discovery = client.DiscoveryV1Api(api)
        self.namespace = namespace
        self.selector = f"kubernetes.io/service-name={service}"

    def _list_and_watch(self) -> None:
        listed: Any = self.discovery.list_namespaced_endpoint_slice(self.namespace, label_selector=self.selector)
        slices: dict[str, Any] = {s.metadata.name: s for s in listed.items}
        self.on_change(backends_from_slices(slices))
        version = listed.metadata.resource_version
        while not self._stop.is_set():
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                self.discovery.list_namespaced_endpoint_slice,
                self.namespace,
                label_selector=self.selector,
                resource_version=version,
                timeout_seconds=5,
            )
            for event in stream:
                item = event["object"]
                version = item.metadata.resource_version
                if event["type"] == "DELETED":
                    slices.pop(item.metadata.name, None)
                else:
                    slices[item.metadata.name] = item
                self.on_change(backends_from_slices(slices))
                if self._stop.is_set():
                    return


class VMIWatcher(Follower):
    """Backends straight from the VMIs (loopback mode: pods have no IP, so EndpointSlices stay empty)."""

    def __init__(
        self, api: client.ApiClient, namespace: str, port: int, on_change: Callable[[list[Backend]], None]
    ) -> None:
        super().__init__(on_change)
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.port = port

    def _list(self, **kwargs: Any) -> Any:
        return self.custom.list_namespaced_custom_object(
            "kubevirt.io", "v1", self.namespace, "virtualmachineinstances", **kwargs
        )

    def _list_and_watch(self) -> None:
        listed = self._list()
        vmis: dict[str, Mapping[str, Any]] = {v["metadata"]["name"]: v for v in listed["items"]}
        self.on_change(backends_from_vmis(vmis, self.port))
        version = listed["metadata"]["resourceVersion"]
        while not self._stop.is_set():
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                self._list, resource_version=version, timeout_seconds=5
            )
            for event in stream:
                item = event["object"]
                version = item["metadata"]["resourceVersion"]
                if event["type"] == "DELETED":
                    vmis.pop(item["metadata"]["name"], None)
                else:
                    vmis[item["metadata"]["name"]] = item
                self.on_change(backends_from_vmis(vmis, self.port))
                if self._stop.is_set():
                    return
