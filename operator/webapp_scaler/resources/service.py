"""The Service in front of the VMs: it selects the label KubeVirt copies to every virt-launcher pod."""

from __future__ import annotations

from typing import Any

from webapp_scaler import naming
from webapp_scaler.constants import LABEL_SCALING
from webapp_scaler.resources.ingress import service_annotations
from webapp_scaler.resources.owner import common_labels, owner_reference
from webapp_scaler.webappscaling import WebAppScaling


def build_service(owner: WebAppScaling) -> dict[str, Any]:
    """The Service, with the sticky-cookie annotations of the ingress controllers that read them here."""
    wanted = owner.spec.workload.service
    service: dict[str, Any] = {
        "type": wanted.type,
        "selector": {LABEL_SCALING: owner.name},
        "ports": [{"name": "http", "protocol": "TCP", "port": wanted.port, "targetPort": wanted.target_port}],
        # in-memory sessions need the same VM for the same client
        "sessionAffinity": wanted.session_affinity,
    }
    if wanted.session_affinity_timeout_seconds is not None:
        service["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": wanted.session_affinity_timeout_seconds}}
    metadata: dict[str, Any] = {
        "name": naming.service_name(owner.name),
        "namespace": owner.namespace,
        "labels": common_labels(owner),
        "ownerReferences": [owner_reference(owner)],
    }
    annotations = service_annotations(owner.spec.workload.ingress)
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": service}
