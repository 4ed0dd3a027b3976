"""golden_image.evaluate: each source kind, each state, and the RBAC cases, with the message a person reads."""

from __future__ import annotations

from typing import Any

import pytest

from webapp_scaler.constants import Reason
from webapp_scaler.golden_image import evaluate

CASES: list[tuple[str, str, dict[str, Any] | None, dict[str, bool], bool, Reason, str]] = [
    (
        "dv-succeeded",
        "DataVolume",
        {"status": {"phase": "Succeeded"}},
        {},
        True,
        Reason.GOLDEN_IMAGE_READY,
        "is Succeeded",
    ),
    (
        "dv-importing",
        "DataVolume",
        {"status": {"phase": "ImportInProgress", "progress": "42.0%"}},
        {},
        False,
        Reason.GOLDEN_IMAGE_NOT_READY,
        "is ImportInProgress (42.0%), not Succeeded",
    ),
    ("dv-no-status", "DataVolume", {}, {}, False, Reason.GOLDEN_IMAGE_NOT_READY, "is Pending"),
    (
        "dv-failed",
        "DataVolume",
        {
            "status": {
                "phase": "Failed",
                "conditions": [{"type": "Running", "message": "Unable to connect to http data source"}],
            }
        },
        {},
        False,
        Reason.GOLDEN_IMAGE_FAILED,
        "failed: Unable to connect to http data source",
    ),
    ("dv-missing", "DataVolume", None, {}, False, Reason.GOLDEN_IMAGE_NOT_FOUND, "does not exist"),
    (
        "pvc-bound",
        "PersistentVolumeClaim",
        {"status": {"phase": "Bound"}},
        {},
        True,
        Reason.GOLDEN_IMAGE_READY,
        "is Bound",
    ),
    (
        "pvc-pending",
        "PersistentVolumeClaim",
        {"status": {"phase": "Pending"}},
        {},
        False,
        Reason.GOLDEN_IMAGE_NOT_READY,
        "is Pending, not Bound",
    ),
    (
        "datasource-ready",
        "DataSource",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {},
        True,
        Reason.GOLDEN_IMAGE_READY,
        "is Ready",
    ),
    (
        "datasource-not-ready",
        "DataSource",
        {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NoPvc"}]}},
        {},
        False,
        Reason.GOLDEN_IMAGE_NOT_READY,
        "is not Ready: NoPvc",
    ),
    (
        "forbidden-to-read",
        "DataVolume",
        None,
        {"readable": False},
        False,
        Reason.CLONE_NOT_AUTHORIZED,
        "may not read DataVolume images/golden",
    ),
    (
        "clone-not-allowed",
        "DataVolume",
        {"status": {"phase": "Succeeded"}},
        {"clone_allowed": False},
        False,
        Reason.CLONE_NOT_AUTHORIZED,
        "needs 'create' on datavolumes/source",
    ),
]


@pytest.mark.parametrize(
    ("kind", "source", "flags", "ready", "reason", "message"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_evaluate(
    kind: str, source: dict[str, Any] | None, flags: dict[str, bool], ready: bool, reason: Reason, message: str
) -> None:
    verdict = evaluate(kind, "images", "golden", source, **flags)
    assert verdict.ready is ready
    assert verdict.reason == reason
    assert message in verdict.message
    assert "images/golden" in verdict.message
