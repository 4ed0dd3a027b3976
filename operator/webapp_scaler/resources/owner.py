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
    LABEL_VM,
    MANAGED_BY,
)
from webapp_scaler.webappscaling import WebAppScaling


def controller_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controller ownerReference: the garbage collector deletes the child with its owner."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owner_reference(owner: WebAppScaling) -> dict[str, Any]:
    return controller_reference(API_VERSION, KIND, owner.name, owner.uid)


def common_labels(owner: WebAppScaling) -> dict[str, str]:
    return {LABEL_SCALING: owner.name, LABEL_MANAGED_BY: MANAGED_BY, LABEL_PART_OF: owner.name}


def vm_labels(owner: WebAppScaling, vm_name: str) -> dict[str, str]:
    """The labels of one VM and of what belongs to it (its DataVolume, its drain-token Secret)."""
    return {**common_labels(owner), LABEL_VM: vm_name}


def controlled_by(obj: Mapping[str, Any], owner: WebAppScaling) -> bool:
    """Whether `obj` (as the API returns it) carries this WebAppScaling's controller ownerReference: the
    only objects the operator may change or delete, as a ReplicaSet only touches the Pods it controls."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner.uid and ref.get("controller") for ref in refs)
