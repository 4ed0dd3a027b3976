"""The status builder: numbers, per-VM rows and conditions from the round's one list of VM states."""

from __future__ import annotations

import dataclasses

import pytest

from webapp_scaler import model, status, webappscaling
from webapp_scaler.constants import Reason
from webapp_scaler.fleet import format_time
from webapp_scaler.golden_image import GoldenImageVerdict
from webapp_scaler.sources.base import Reading

NOW = 1_800_000_000.0
R, D, W, C = model.VMPhase.READY, model.VMPhase.DRAINING, model.VMPhase.WARM, model.VMPhase.CLONING
GOLDEN = GoldenImageVerdict(True, Reason.GOLDEN_IMAGE_READY, "DataVolume prod/golden is Succeeded")
SPEC = webappscaling.ScalingSpec.from_spec({"replicas": {"min": 2, "max": 5}})


def decision(desired: int, message: str = "scaled up 2→3") -> model.Decision:
    return model.Decision(
        desired=desired,
        create=0,
        start=(),
        return_to_service=(),
        drain=(),
        delete=(),
        create_warm=0,
        reason=Reason.DESIRED_WITHIN_RANGE,
        message=message,
        current_sessions=None,
        average_sessions=41.26,
        forecast_sessions=None,
        memory=model.EngineMemory(),
    )


STATES = [
    model.VMState("shop-a", R, 0.0, sessions=20.4, ip="10.0.0.1"),
    model.VMState("shop-b", D, 0.0, sessions=3.0, ip="10.0.0.2", draining_since=NOW - 60),
    model.VMState("shop-c", C, 0.0),
    model.VMState("shop-w", W, 0.0),
]


def build(states: list[model.VMState] = STATES, *, previous: dict | None = None, **kw: object) -> dict:
    arguments: dict = {
        "name": "shop",
        "generation": 3,
        "states": states,
        "scraped": True,
        "decision": decision(3),
        "condition_list": status.conditions(
            golden=GOLDEN, readings=[], states=states, decision=decision(3), spec=SPEC, spec_error=None
        ),
        "previous": previous or {},
        "now": NOW,
    }
    arguments.update(kw)
    return status.build_status(**arguments)


def test_counts_and_rows_come_from_the_states() -> None:
    built = build()
    assert (built["replicas"], built["readyReplicas"], built["drainingReplicas"], built["warmReplicas"]) == (2, 1, 1, 1)
    assert built["desiredReplicas"] == 3 and built["observedGeneration"] == 3
    assert built["selector"] == "webappscaler.io/scaling=shop"
    assert built["sessions"] == {"current": 23, "average": "41.3", "forecast": None}
    assert built["vms"][0] == {"name": "shop-a", "phase": "Ready", "sessions": 20, "ip": "10.0.0.1"}
    assert built["vms"][1]["drainingSince"] == format_time(NOW - 60)
    assert built["vms"][2] == {"name": "shop-c", "phase": "Cloning", "sessions": None, "ip": None}


def test_no_scrape_means_an_unknown_session_count_not_zero() -> None:
    quiet = [dataclasses.replace(s, sessions=None) for s in STATES]
    assert build(quiet, scraped=False)["sessions"]["current"] is None
    assert build(quiet, scraped=True)["sessions"]["current"] == 0


def test_last_scale_time_moves_only_when_the_desired_count_does() -> None:
    first = build(previous={"desiredReplicas": 2})
    assert first["lastScaleTime"] == format_time(NOW, precise=False)
    assert first["lastScaleReason"] == "scaled up 2→3"
    later = build(previous=first, now=NOW + 60, decision=decision(3, "within tolerance"))
    assert later["lastScaleTime"] == first["lastScaleTime"] and later["lastScaleReason"] == "scaled up 2→3"


def test_a_condition_keeps_its_transition_time_until_its_status_flips() -> None:
    first = build()
    ready = next(c for c in first["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"  # 1 of 3 VMs ready
    again = build(previous=first, now=NOW + 30)
    assert (
        next(c for c in again["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
        == ready["lastTransitionTime"]
    )
    all_ready = [model.VMState(f"shop-{i}", R, 0.0, sessions=1.0) for i in "xyz"]
    flipped = build(
        all_ready,
        previous=first,
        now=NOW + 90,
        condition_list=status.conditions(
            golden=GOLDEN, readings=[], states=all_ready, decision=decision(3), spec=SPEC, spec_error=None
        ),
    )
    ready_now = next(c for c in flipped["conditions"] if c["type"] == "Ready")
    assert ready_now["status"] == "True" and ready_now["lastTransitionTime"] == format_time(NOW + 90)


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        ([], ("False", "NoReadyVMs")),
        ([Reading("a", None, "timed out after 5 s", 5.0)], ("False", "FailedGetSessionMetrics")),
        ([Reading("a", 3.0, None, 0.01), Reading("b", None, "HTTP 500", 0.01)], ("True", "ValidMetricFound")),
    ],
    ids=["nobody-to-ask", "all-failed", "one-failed"],
)
def test_metrics_available(readings: list[Reading], expected: tuple[str, str]) -> None:
    [_, _, metrics, _, _] = status.conditions(
        golden=GOLDEN, readings=readings, states=STATES, decision=decision(3), spec=SPEC, spec_error=None
    )
    assert ("True" if metrics.status else "False", str(metrics.reason)) == expected


def test_an_invalid_spec_sets_every_condition_but_metrics_to_invalid_spec() -> None:
    found = status.conditions(
        golden=None, readings=[], states=STATES, decision=None, spec=None, spec_error="spec.replicas.max: too small"
    )
    assert [(str(c.type), str(c.reason)) for c in found] == [
        ("Ready", "InvalidSpec"),
        ("Scaling", "InvalidSpec"),
        ("MetricsAvailable", "NoReadyVMs"),
        ("GoldenImageReady", "InvalidSpec"),
        ("Stalled", "NoConflict"),
    ]
    assert "spec.replicas.max" in found[0].message


def test_a_golden_image_that_is_not_ready_holds_ready_false() -> None:
    missing = GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_FOUND, "DataVolume prod/golden does not exist")
    ready, scaling, _, golden, _ = status.conditions(
        golden=missing, readings=[], states=[], decision=None, spec=SPEC, spec_error=None
    )
    assert (ready.status, ready.reason) == (False, Reason.GOLDEN_IMAGE_NOT_FOUND)
    assert scaling.message == "waiting for the golden image" and not golden.status


def test_a_name_conflict_is_stalled_true_with_the_objects_named() -> None:
    found = status.conditions(
        golden=GOLDEN,
        readings=[],
        states=STATES,
        decision=decision(3),
        spec=SPEC,
        spec_error=None,
        conflicts=["Service prod/shop exists and is not controlled by this WebAppScaling: left untouched"],
    )
    stalled = found[-1]
    assert (str(stalled.type), stalled.status, str(stalled.reason)) == ("Stalled", True, "NameConflict")
    assert "Service prod/shop" in stalled.message
