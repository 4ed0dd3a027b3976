"""Is the golden image ready to be cloned? Pure evaluation of what the API returned for the source.

DataVolume: `status.phase == Succeeded`; PersistentVolumeClaim: `status.phase == Bound`; DataSource:
its `Ready` condition. Cloning from another namespace additionally needs `create datavolumes/source`
there (CDI's clone authorization, see docs/rbac.md); without it every clone would sit in CloneScheduled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webapp_scaler.constants import Reason


@dataclass(frozen=True, slots=True)
class GoldenImageVerdict:
    ready: bool
    reason: Reason
    message: str


def evaluate(
    kind: str,
    namespace: str,
    name: str,
    source: Mapping[str, Any] | None,
    *,
    readable: bool = True,
    clone_allowed: bool = True,
) -> GoldenImageVerdict:
    where = f"{kind} {namespace}/{name}"
    if not readable:
        return GoldenImageVerdict(
            False,
            Reason.CLONE_NOT_AUTHORIZED,
            f"the operator may not read {where}; grant get on {_resource(kind)} in namespace {namespace} "
            "(docs/rbac.md)",
        )
    if source is None:
        return GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_FOUND, f"{where} does not exist")
    if not clone_allowed:
        return GoldenImageVerdict(
            False,
            Reason.CLONE_NOT_AUTHORIZED,
            f"cloning {where} needs 'create' on datavolumes/source (cdi.kubevirt.io) in namespace {namespace} "
            "for the operator's service account (docs/rbac.md)",
        )
    status = source.get("status") or {}
    if kind == "PersistentVolumeClaim":
        phase = status.get("phase", "Pending")
        if phase == "Bound":
            return GoldenImageVerdict(True, Reason.GOLDEN_IMAGE_READY, f"{where} is Bound")
        return GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_READY, f"{where} is {phase}, not Bound")
    if kind == "DataSource":
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready and ready.get("status") == "True":
            return GoldenImageVerdict(True, Reason.GOLDEN_IMAGE_READY, f"{where} is Ready")
        detail = (ready or {}).get("message") or (ready or {}).get("reason") or "no Ready condition yet"
        return GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_READY, f"{where} is not Ready: {detail}")
    phase = status.get("phase") or "Pending"
    if phase == "Succeeded":
        return GoldenImageVerdict(True, Reason.GOLDEN_IMAGE_READY, f"{where} is Succeeded")
    if phase == "Failed":
        return GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_FAILED, f"{where} failed: {_last_message(status)}")
    progress = status.get("progress")
    suffix = f" ({progress})" if progress and progress != "N/A" else ""
    return GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_READY, f"{where} is {phase}{suffix}, not Succeeded")


def _resource(kind: str) -> str:
    return {"PersistentVolumeClaim": "persistentvolumeclaims", "DataSource": "datasources"}.get(kind, "datavolumes")


def _last_message(status: Mapping[str, Any]) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("message"):
            return str(condition["message"])
    return "no message"
