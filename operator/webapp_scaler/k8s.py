"""The only module that talks to the Kubernetes API (besides kopf's own watching and event posting).

The official client is synchronous; every call runs in a worker thread so the operator's event loop
keeps scraping and deciding for the other WebAppScalings meanwhile. KubeVirt and CDI have no Python
client, so their kinds go through the custom-objects API.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from webapp_scaler.constants import (
    CDI_GROUP,
    CDI_VERSION,
    FIELD_MANAGER,
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    GROUP,
    KUBEVIRT_GROUP,
    KUBEVIRT_VERSION,
    PLURAL,
    VERSION,
)

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class AlreadyExists(RuntimeError):
    pass


@dataclass
class Kube:
    """Thin async wrappers around the calls the operator makes; one instance per process."""

    api: kubernetes.client.ApiClient

    @classmethod
    def from_environment(cls) -> Kube:
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        return cls(kubernetes.client.ApiClient())

    @property
    def _custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api)

    @property
    def _core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api)

    # ---- VirtualMachines ------------------------------------------------------------------------------
    async def create_vm(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create the VM; returns it as the API stored it (with its uid)."""
        try:
            created = await asyncio.to_thread(
                self._custom.create_namespaced_custom_object,
                KUBEVIRT_GROUP,
                KUBEVIRT_VERSION,
                body["metadata"]["namespace"],
                "virtualmachines",
                dict(body),
                field_manager=FIELD_MANAGER,
            )
        except ApiException as error:
            if error.status == 409:
                raise AlreadyExists(body["metadata"]["name"]) from error
            raise
        return cast(dict[str, Any], created)

    async def create_secret(self, body: Mapping[str, Any]) -> None:
        """Create a Secret the operator owns (a VM's drain token); one that exists already is kept."""
        try:
            create: Any = self._core.create_namespaced_secret  # takes a plain dict as the body too
            await asyncio.to_thread(create, body["metadata"]["namespace"], dict(body), field_manager=FIELD_MANAGER)
        except ApiException as error:
            if error.status != 409:
                raise

    async def patch_vm(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        await asyncio.to_thread(
            self._custom.patch_namespaced_custom_object,
            KUBEVIRT_GROUP,
            KUBEVIRT_VERSION,
            namespace,
            "virtualmachines",
            name,
            dict(patch),
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
        )

    async def delete_vm(self, namespace: str, name: str) -> None:
        """Delete in the background: the garbage collector removes the VMI, pod and cloned DataVolume."""
        try:
            await asyncio.to_thread(
                self._custom.delete_namespaced_custom_object,
                KUBEVIRT_GROUP,
                KUBEVIRT_VERSION,
                namespace,
                "virtualmachines",
                name,
                propagation_policy="Background",
            )
        except ApiException as error:
            if error.status != 404:
                raise

    # ---- golden image -------------------------------------------------------------------------------
    async def get_golden_image(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The source object, or None when it does not exist. Raises ApiException(403) when forbidden."""
        try:
            if kind == "PersistentVolumeClaim":
                pvc = await asyncio.to_thread(self._core.read_namespaced_persistent_volume_claim, name, namespace)
                return dict(self.api.sanitize_for_serialization(pvc))
            plural = "datasources" if kind == "DataSource" else "datavolumes"
            obj = await asyncio.to_thread(
                self._custom.get_namespaced_custom_object, CDI_GROUP, CDI_VERSION, namespace, plural, name
            )
            return cast(dict[str, Any], obj)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def can_clone_from(self, namespace: str) -> bool:
        """CDI lets a clone read another namespace's disk only with `create datavolumes/source` there."""
        client = kubernetes.client
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    group=CDI_GROUP,
                    resource="datavolumes",
                    subresource="source",
                    verb="create",
                    namespace=namespace,
                )
            )
        )
        api = client.AuthorizationV1Api(self.api)
        result = await asyncio.to_thread(api.create_self_subject_access_review, review)
        return bool(result.status and result.status.allowed)

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        try:
            secret = await asyncio.to_thread(self._core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            if error.status in (403, 404):
                return None
            raise
        data = (secret.data or {}).get(key)
        return base64.b64decode(data).decode().strip() if data else None

    # ---- Service, Ingress and HTTPRoute ------------------------------------------------------------
    async def apply(self, body: Mapping[str, Any]) -> None:
        """Server-side apply under our field manager: fields others set (annotations from an ingress
        controller, a cloud LB's status, a Gateway controller's route status) survive, a conflicting field
        of ours is taken back (force), and a field we no longer send is removed."""
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        payload = json.loads(json.dumps(body))
        if body["kind"] == "HTTPRoute":
            await asyncio.to_thread(
                self._custom.patch_namespaced_custom_object,
                GATEWAY_GROUP,
                GATEWAY_VERSION,
                namespace,
                "httproutes",
                name,
                payload,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY_PATCH,
            )
        elif body["kind"] == "Service":
            await asyncio.to_thread(
                self._core.patch_namespaced_service,
                name,
                namespace,
                payload,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY_PATCH,
            )
        elif body["kind"] == "Ingress":
            networking = kubernetes.client.NetworkingV1Api(self.api)
            await asyncio.to_thread(
                networking.patch_namespaced_ingress,
                name,
                namespace,
                payload,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY_PATCH,
            )
        else:
            raise ValueError(f"cannot apply a {body['kind']}")

    async def get_network_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The Service, Ingress or HTTPRoute of that name as the API has it, or None when there is none
        (for an HTTPRoute also when the cluster has no Gateway API)."""
        if kind == "HTTPRoute":
            return await self._get_gateway_api("httproutes", namespace, name)
        if kind not in ("Service", "Ingress"):
            raise ValueError(f"cannot read a {kind}")
        try:
            read: Any = (
                self._core.read_namespaced_service
                if kind == "Service"
                else kubernetes.client.NetworkingV1Api(self.api).read_namespaced_ingress
            )
            obj = await asyncio.to_thread(read, name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return cast(dict[str, Any], self.api.sanitize_for_serialization(obj))

    async def delete_ingress(self, namespace: str, name: str) -> None:
        try:
            networking = kubernetes.client.NetworkingV1Api(self.api)
            await asyncio.to_thread(networking.delete_namespaced_ingress, name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise

    async def delete_route(self, namespace: str, name: str) -> None:
        try:
            await asyncio.to_thread(
                self._custom.delete_namespaced_custom_object,
                GATEWAY_GROUP,
                GATEWAY_VERSION,
                namespace,
                "httproutes",
                name,
            )
        except ApiException as error:
            if error.status != 404:
                raise

    # ---- what the cluster's Gateway API serves ------------------------------------------------------
    async def get_crd(self, name: str) -> dict[str, Any] | None:
        """A CustomResourceDefinition (e.g. httproutes.gateway.networking.k8s.io), or None when absent."""
        try:
            api = kubernetes.client.ApiextensionsV1Api(self.api)
            crd = await asyncio.to_thread(api.read_custom_resource_definition, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return cast(dict[str, Any], self.api.sanitize_for_serialization(crd))

    async def get_gateway(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_gateway_api("gateways", namespace, name)

    async def get_gateway_class(self, name: str) -> dict[str, Any] | None:
        try:
            obj = await asyncio.to_thread(
                self._custom.get_cluster_custom_object, GATEWAY_GROUP, GATEWAY_VERSION, "gatewayclasses", name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return cast(dict[str, Any], obj)

    async def _get_gateway_api(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A namespaced Gateway API object; None when absent or when the cluster has no such resource."""
        try:
            obj = await asyncio.to_thread(
                self._custom.get_namespaced_custom_object, GATEWAY_GROUP, GATEWAY_VERSION, namespace, plural, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return cast(dict[str, Any], obj)

    # ---- WebAppScaling status -----------------------------------------------------------------------
    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await asyncio.to_thread(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": dict(status)},
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
        )
