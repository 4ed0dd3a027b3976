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


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def common_labels(owner: Mapping[str, Any]) -> dict[str, str]:
    name = owner["metadata"]["name"]
    return {LABEL_SCALING: name, LABEL_MANAGED_BY: MANAGED_BY, LABEL_PART_OF: name}
