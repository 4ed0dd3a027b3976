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
        ([], ("Unknown", "NoReadyVMs")),
        ([Reading("a", None, "timed out after 5 s", 5.0)], ("False", "FailedGetSessionMetrics")),
        ([Reading("a", 3.0, None, 0.01), Reading("b", None, "HTTP 500", 0.01)], ("True", "ValidMetricFound")),
    ],
    ids=["nobody-to-ask", "all-failed", "one-failed"],
)
def test_metrics_available(readings: list[Reading], expected: tuple[str, str]) -> None:
    [_, _, metrics, _, _, _, _] = status.conditions(
        golden=GOLDEN, readings=readings, states=STATES, decision=decision(3), spec=SPEC, spec_error=None
    )
    shown = {True: "True", False: "False", None: "Unknown"}[metrics.status]
    assert (shown, str(metrics.reason)) == expected


def test_a_golden_image_still_importing_is_unknown_not_false() -> None:
    """Not ready *yet* is Unknown (Argo CD: Progressing); missing or failed is False (Degraded)."""
    importing = GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_READY, "DataVolume prod/golden: ImportInProgress 40%")
    failed = GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_FAILED, "DataVolume prod/golden failed")
    for verdict, expected in ((importing, None), (failed, False), (GOLDEN, True)):
        found = status.conditions(
            golden=verdict, readings=[], states=STATES, decision=decision(3), spec=SPEC, spec_error=None
        )
        golden = next(c for c in found if c.type == "GoldenImageReady")
        assert golden.status is expected, verdict


def test_an_invalid_spec_sets_every_condition_but_metrics_to_invalid_spec() -> None:
    found = status.conditions(
        golden=None, readings=[], states=STATES, decision=None, spec=None, spec_error="spec.replicas.max: too small"
    )
    assert [(str(c.type), str(c.reason)) for c in found] == [
        ("Ready", "InvalidSpec"),
        ("Scaling", "InvalidSpec"),
        ("MetricsAvailable", "NoReadyVMs"),
        ("GoldenImageReady", "InvalidSpec"),
        ("Reconciling", "Blocked"),
        ("Stalled", "InvalidSpec"),
        ("DrainReady", "InvalidSpec"),
    ]
    assert "spec.replicas.max" in found[0].message


def test_a_golden_image_that_is_not_ready_holds_ready_false() -> None:
    missing = GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_FOUND, "DataVolume prod/golden does not exist")
    ready, scaling, _, golden, _, _, _ = status.conditions(
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
    stalled = next(c for c in found if str(c.type) == "Stalled")
    assert (str(stalled.type), stalled.status, str(stalled.reason)) == ("Stalled", True, "NameConflict")
    assert "Service prod/shop" in stalled.message


# ---- kstatus's Reconciling and Stalled -----------------------------------------------------------------
def kstatus_pair(**kw: object) -> tuple[status.Condition, status.Condition]:
    """The Reconciling and Stalled conditions of one round; the rest of the round as in STATES."""
    arguments: dict = {
        "golden": GOLDEN,
        "readings": [],
        "states": STATES,
        "decision": decision(3),
        "spec": SPEC,
        "spec_error": None,
    }
    arguments.update(kw)
    found = {str(c.type): c for c in status.conditions(**arguments)}
    return found["Reconciling"], found["Stalled"]


SETTLED = [model.VMState("shop-a", R, 0.0, sessions=5.0), model.VMState("shop-b", R, 0.0, sessions=5.0)]


def test_a_settled_fleet_is_reconciling_false_and_stalled_false_each_with_a_reason() -> None:
    reconciling, stalled = kstatus_pair(states=SETTLED, decision=decision(2))
    assert (reconciling.status, reconciling.reason) == (False, Reason.VMS_SETTLED)
    assert reconciling.message.startswith("2 of 2 VMs ready, none cloning")
    assert (stalled.status, stalled.reason) == (False, Reason.NOT_STALLED)
    assert stalled.message.startswith("nothing needs a person")


@pytest.mark.parametrize(
    ("states", "acting", "desired", "message"),
    [
        (STATES, False, 3, "1 of 3 VMs ready; 1 cloning, 1 draining"),
        ([*SETTLED, model.VMState("shop-c", model.VMPhase.BOOTING, 0.0)], False, 3, "2 of 3 VMs ready; 1 booting"),
        ([*SETTLED, model.VMState("shop-w", model.VMPhase.STARTING, 0.0)], False, 3, "2 of 3 VMs ready; 1 starting"),
        ([*SETTLED, model.VMState("shop-f", model.VMPhase.FAILED, 0.0)], False, 2, "2 of 2 VMs ready; 1 failed"),
        (SETTLED, True, 2, "2 of 2 VMs ready; this round: scaled up 2→3"),  # the round itself acted
        (SETTLED, False, 3, "2 of 3 VMs ready"),  # a VM the expectations do not show yet
    ],
    ids=["cloning-and-draining", "booting", "starting-warm-vm", "failed-vm", "acted", "fewer-ready-than-desired"],
)
def test_work_in_flight_is_reconciling_true(
    states: list[model.VMState], acting: bool, desired: int, message: str
) -> None:
    """The status is written with the generation the round read, so Reconciling cannot rest on an
    unobserved generation: it is the work left, VMs on their way in or out or the round's own actions."""
    round_decision = dataclasses.replace(decision(desired), create=1 if acting else 0)
    reconciling, stalled = kstatus_pair(states=states, decision=round_decision)
    assert (reconciling.status, reconciling.reason, reconciling.message) == (True, Reason.VMS_CHANGING, message)
    assert not stalled.status


def test_paused_a_drain_or_a_failed_vm_is_not_progress_but_a_boot_still_is() -> None:
    """Paused, the operator deletes and drains nothing: a draining or failed VM would keep Reconciling True
    (kstatus InProgress) for as long as the pause lasts. A boot goes on without the operator."""
    paused = dataclasses.replace(decision(2), reason=Reason.PAUSED, message="paused: no scale actions")
    waiting = [*SETTLED, model.VMState("shop-d", D, 0.0), model.VMState("shop-f", model.VMPhase.FAILED, 0.0)]
    reconciling, _ = kstatus_pair(states=waiting, decision=paused)
    assert (reconciling.status, reconciling.reason) == (False, Reason.VMS_SETTLED)
    assert (
        reconciling.message
        == "2 of 2 VMs ready; paused: no VM is created, drained or deleted until spec.paused is false"
    )
    booting = [*SETTLED, model.VMState("shop-c", model.VMPhase.BOOTING, 0.0)]
    reconciling, _ = kstatus_pair(states=booting, decision=dataclasses.replace(paused, desired=3))
    assert (reconciling.status, reconciling.message) == (True, "2 of 3 VMs ready; 1 booting")


def test_a_golden_image_still_importing_is_reconciling_not_stalled() -> None:
    importing = GoldenImageVerdict(
        False, Reason.GOLDEN_IMAGE_NOT_READY, "DataVolume prod/golden is ImportInProgress (40.0%), not Succeeded"
    )
    reconciling, stalled = kstatus_pair(golden=importing, states=[], decision=None)
    assert (reconciling.status, reconciling.reason) == (True, Reason.GOLDEN_IMAGE_NOT_READY)
    assert reconciling.message == f"waiting for the golden image: {importing.message}"
    assert not stalled.status


@pytest.mark.parametrize(
    ("kw", "reason", "message"),
    [
        ({"golden": None, "decision": None, "spec": None, "spec_error": "spec.x: bad"}, "InvalidSpec", "spec.x: bad"),
        (
            {"golden": GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_FOUND, "DataVolume p/g does not exist")},
            "GoldenImageNotFound",
            "DataVolume p/g does not exist",
        ),
        (
            {"golden": GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_FAILED, "DataVolume p/g failed: 404")},
            "GoldenImageFailed",
            "DataVolume p/g failed: 404",
        ),
        (
            {"golden": GoldenImageVerdict(False, Reason.CLONE_NOT_AUTHORIZED, "cloning needs 'create'")},
            "CloneNotAuthorized",
            "cloning needs 'create'",
        ),
        ({"create_refused": "HTTP 403: forbidden"}, "FailedCreate", "HTTP 403: forbidden"),
        ({"conflicts": ["Service p/shop exists", "Ingress p/shop exists"]}, "NameConflict", "Service p/shop exists; I"),
    ],
    ids=["invalid-spec", "golden-missing", "golden-failed", "clone-not-authorized", "create-forbidden", "conflict"],
)
def test_what_needs_a_person_is_stalled_true_and_reconciling_false(kw: dict, reason: str, message: str) -> None:
    """kstatus reads Reconciling before Stalled: were both True, a stalled object would read InProgress
    for ever. So Stalled wins, and Reconciling says what blocks it."""
    reconciling, stalled = kstatus_pair(**kw)
    assert (stalled.status, str(stalled.reason)) == (True, reason)
    assert stalled.message.startswith(message)
    assert (reconciling.status, reconciling.reason) == (False, Reason.BLOCKED)
    assert reconciling.message == f"blocked: {stalled.message}"


def test_the_first_blocker_is_the_one_named() -> None:
    """A missing golden image explains a refused create too (no VM could be cloned anyway): it comes first."""
    missing = GoldenImageVerdict(False, Reason.GOLDEN_IMAGE_NOT_FOUND, "DataVolume p/g does not exist")
    _, stalled = kstatus_pair(golden=missing, create_refused="HTTP 403", conflicts=["Service p/shop exists"])
    assert stalled.reason == Reason.GOLDEN_IMAGE_NOT_FOUND


def test_reconciling_and_stalled_carry_the_observed_generation_like_every_condition() -> None:
    settled = status.conditions(
        golden=GOLDEN, readings=[], states=SETTLED, decision=decision(2), spec=SPEC, spec_error=None
    )
    built = build(states=SETTLED, decision=decision(2), condition_list=settled)
    rows = {c["type"]: c for c in built["conditions"]}
    assert rows["Reconciling"]["status"] == "False" and rows["Stalled"]["status"] == "False"
    assert {c["observedGeneration"] for c in built["conditions"]} == {built["observedGeneration"]} == {3}
