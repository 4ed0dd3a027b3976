"""Condition lists as Kubernetes controllers keep them: lastTransitionTime moves only on a status change."""

from __future__ import annotations

from typing import Any

Condition = dict[str, Any]


def condition(kind: str, status: bool | None, reason: str = "", message: str = "") -> Condition:
    """A condition; `status=None` is "Unknown"."""
    text = "Unknown" if status is None else ("True" if status else "False")
    cond: Condition = {"type": kind, "status": text}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def merge(old: list[Condition] | None, new: list[Condition], stamp: str) -> list[Condition]:
    """`new` with each condition's lastTransitionTime kept from `old` when its status is unchanged."""
    previous = {c.get("type"): c for c in old or []}
    merged = []
    for cond in new:
        before = previous.get(cond["type"])
        since = before.get("lastTransitionTime") if before and before.get("status") == cond["status"] else None
        merged.append({**cond, "lastTransitionTime": since or stamp})
    return merged


def same(old: list[Condition] | None, new: list[Condition]) -> bool:
    """Equal but for timestamps: no status write needed."""

    def strip(conds: list[Condition] | None) -> list[tuple[Any, ...]]:
        return sorted((c.get("type"), c.get("status"), c.get("reason", ""), c.get("message", "")) for c in conds or [])

    return strip(old) == strip(new)


def find(obj: dict[str, Any], kind: str) -> Condition | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_true(obj: dict[str, Any], kind: str) -> bool:
    cond = find(obj, kind)
    return cond is not None and cond.get("status") == "True"
