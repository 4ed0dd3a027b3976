"""The ownerReference every object we create carries, so deleting a WebAppScaling deletes them all
(by the cluster's garbage collector, also when the operator is down)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp_scaler.constants import (
    API_VERSION,
    KIND,
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    LABEL_SCALING,
    MANAGED_BY,
)
from webapp_scaler.webappscaling import WebAppScaling


def owner_reference(owner: WebAppScaling) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def common_labels(owner: WebAppScaling) -> dict[str, str]:
    return {LABEL_SCALING: owner.name, LABEL_MANAGED_BY: MANAGED_BY, LABEL_PART_OF: owner.name}


def controlled_by(obj: Mapping[str, Any], owner: WebAppScaling) -> bool:
    """Whether `obj` (as the API returns it) carries this WebAppScaling's controller ownerReference: the
    only objects the operator may change or delete, as a ReplicaSet only touches the Pods it controls."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner.uid and ref.get("controller") for ref in refs)
