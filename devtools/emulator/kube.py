"""The only module that talks to the kube-apiserver: raw JSON objects in and out, for every kind we use.

Everything is a plain dict (as the custom-objects API returns them), core kinds included, so the
controllers handle KubeVirt, CDI and core objects alike. Patches are JSON merge patches.
"""

from __future__ import annotations

import datetime
import json
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("emulator.kube")

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    core_name: str = ""
    """Name of the kind in CoreV1Api method names (`persistent_volume_claim`); empty for custom kinds."""
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


VM = Kind("VirtualMachine", "kubevirt.io", "v1", "virtualmachines")
VMI = Kind("VirtualMachineInstance", "kubevirt.io", "v1", "virtualmachineinstances")
DV = Kind("DataVolume", "cdi.kubevirt.io", "v1beta1", "datavolumes")
DATASOURCE = Kind("DataSource", "cdi.kubevirt.io", "v1beta1", "datasources")
POD = Kind("Pod", "", "v1", "pods", core_name="pod")
PVC = Kind("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", core_name="persistent_volume_claim")
NODE = Kind("Node", "", "v1", "nodes", core_name="node", namespaced=False)
SECRET = Kind("Secret", "", "v1", "secrets", core_name="secret")


def not_found(error: ApiException) -> bool:
    return bool(error.status == 404)


def already_exists(error: ApiException) -> bool:
    return bool(error.status == 409)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_reference(owner: Obj, kind: Kind) -> Obj:
    """A controller reference: the garbage collector deletes the child with its owner."""
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Obj) -> Obj | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


class Kube:
    """Thin typed wrapper over the official client; raises ApiException like it."""

    def __init__(self, kubeconfig: Path | None, *, events: bool = True) -> None:
        """`events=False`: `event()` records nothing (the light mode's fleets of thousands)."""
        self.events = events
        configuration = client.Configuration()
        if kubeconfig is None:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), client_configuration=configuration
            )
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.host = socket.gethostname()

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    # ---- reads -------------------------------------------------------------------------------------
    def list(self, kind: Kind, namespace: str | None) -> Obj:
        fn, args = self._list_call(kind, namespace)
        if kind.core_name:
            return self._raw(fn(*args, _preload_content=False))
        return self._raw(fn(*args))

    def watch(self, kind: Kind, namespace: str | None, resource_version: str, timeout: int) -> Iterator[Obj]:
        """Raw watch events ({type, object}); ends after `timeout` seconds; 410 Gone raises ApiException."""
        fn, args = self._list_call(kind, namespace)
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            fn,
            *args,
            resource_version=resource_version,
            timeout_seconds=timeout,
            allow_watch_bookmarks=True,
            deserialize=False,
        )
        yield from stream

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        try:
            if kind.core_name:
                if kind.namespaced:
                    fn = getattr(self.core, f"read_namespaced_{kind.core_name}")
                    return self._raw(fn(name, namespace, _preload_content=False))
                return self._raw(getattr(self.core, f"read_{kind.core_name}")(name, _preload_content=False))
            return self._raw(
                self.custom.get_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural, name)
            )
        except ApiException as error:
            if not_found(error):
                return None
            raise

    # ---- writes ------------------------------------------------------------------------------------
    def create(self, kind: Kind, namespace: str, body: Obj) -> Obj:
        body = {"apiVersion": kind.api_version, "kind": kind.kind, **body}
        if kind.core_name:
            if kind.namespaced:
                fn = getattr(self.core, f"create_namespaced_{kind.core_name}")
                return self._raw(fn(namespace, body, _preload_content=False))
            return self._raw(getattr(self.core, f"create_{kind.core_name}")(body, _preload_content=False))
        return self._raw(
            self.custom.create_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural, body)
        )

    def patch(self, kind: Kind, namespace: str, name: str, patch: Obj, *, status: bool = False) -> Obj:
        """JSON merge patch of the object, or of its status subresource with `status=True`."""
        suffix = "_status" if status else ""
        if kind.core_name:
            prefix = "patch_namespaced_" if kind.namespaced else "patch_"
            fn = getattr(self.core, f"{prefix}{kind.core_name}{suffix}")
            args = (name, namespace, patch) if kind.namespaced else (name, patch)
            return self._raw(fn(*args, _content_type=MERGE_PATCH, _preload_content=False))
        custom_fn = (
            self.custom.patch_namespaced_custom_object_status if status else self.custom.patch_namespaced_custom_object
        )
        return self._raw(
            custom_fn(kind.group, kind.version, namespace, kind.plural, name, patch, _content_type=MERGE_PATCH)
        )

    def delete(
        self, kind: Kind, namespace: str, name: str, *, uid: str | None = None, grace: int | None = None
    ) -> bool:
        """Delete (background propagation); False when it was already gone."""
        body = client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=uid) if uid else None,
            grace_period_seconds=grace,
        )
        try:
            if kind.core_name:
                fn = getattr(self.core, f"delete_namespaced_{kind.core_name}")
                fn(name, namespace, body=body, _preload_content=False)
            else:
                self.custom.delete_namespaced_custom_object(
                    kind.group, kind.version, namespace, kind.plural, name, body=body
                )
        except ApiException as error:
            if not_found(error) or error.status == 409:  # gone, or replaced by a namesake (uid precondition)
                return False
            raise
        return True

    def event(self, obj: Obj, kind: Kind, *, reason: str, message: str, component: str, warning: bool = False) -> None:
        """A core/v1 Event on `obj`, as KubeVirt's and CDI's recorders emit them; failures only log."""
        if not self.events:
            return
        meta = obj["metadata"]
        stamp = now()
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": component, "host": self.host},
            "reportingComponent": component,
            "reportingInstance": self.host,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(meta["namespace"], cast(Any, body), _preload_content=False)
        except ApiException as error:
            log.debug("event not recorded", extra={"fields": {"reason": reason, "status": error.status}})

    # ---- helpers -----------------------------------------------------------------------------------
    def _list_call(self, kind: Kind, namespace: str | None) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if kind.core_name:
            if not kind.namespaced:
                return getattr(self.core, f"list_{kind.core_name}"), ()
            if namespace is None:
                return getattr(self.core, f"list_{kind.core_name}_for_all_namespaces"), ()
            return getattr(self.core, f"list_namespaced_{kind.core_name}"), (namespace,)
        if namespace is None:
            return self.custom.list_cluster_custom_object, (kind.group, kind.version, kind.plural)
        return self.custom.list_namespaced_custom_object, (kind.group, kind.version, namespace, kind.plural)

    @staticmethod
    def _raw(response: Any) -> Obj:
        if isinstance(response, dict):
            return cast(Obj, response)
        data: Obj = json.loads(response.data)
        return data
