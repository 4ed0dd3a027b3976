"""The Service in front of the VMs: it selects the label KubeVirt copies to every virt-launcher pod."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp_scaler import naming
from webapp_scaler.constants import LABEL_SCALING
from webapp_scaler.resources.owner import common_labels, owner_reference


def build_service(owner: Mapping[str, Any]) -> dict[str, Any]:
    meta, spec = owner["metadata"], owner["spec"].get("service") or {}
    service: dict[str, Any] = {
        "type": spec.get("type", "ClusterIP"),
        "selector": {LABEL_SCALING: meta["name"]},
        "ports": [
            {
                "name": "http",
                "protocol": "TCP",
                "port": spec.get("port", 80),
                "targetPort": spec.get("targetPort", 8080),
            }
        ],
        # in-memory sessions need the same VM for the same client
        "sessionAffinity": spec.get("sessionAffinity", "ClientIP"),
    }
    if service["sessionAffinity"] == "ClientIP" and "sessionAffinityTimeoutSeconds" in spec:
        service["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": spec["sessionAffinityTimeoutSeconds"]}}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": naming.service_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": common_labels(owner),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": service,
    }
