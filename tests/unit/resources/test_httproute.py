"""build_httproute: parents, host names, the path to the Service, the retry a drain mode needs, cookie
persistence only where the cluster serves it, pass-through filters, ownership."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.resources.test_virtualmachine import owner
from webapp_scaler.resources import build_httproute

PARENTS = [{"name": "public", "namespace": "gateways", "sectionName": "https"}]


def route(served: bool = True, **spec: Any) -> dict[str, Any]:
    built = build_httproute(owner(**spec), session_persistence_served=served)
    assert built is not None
    return built


def test_no_route_without_spec_route() -> None:
    assert build_httproute(owner(), session_persistence_served=True) is None


def test_the_route_sends_the_path_to_the_service_through_the_given_parents() -> None:
    built = route(
        route={"parentRefs": PARENTS, "hostnames": ["shop.example.com"], "path": "/shop"}, service={"port": 8000}
    )
    assert (built["apiVersion"], built["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert built["metadata"]["name"] == "shop" and built["metadata"]["namespace"] == "prod"
    [owner_ref] = built["metadata"]["ownerReferences"]
    assert (owner_ref["kind"], owner_ref["name"], owner_ref["controller"]) == ("WebAppScaling", "shop", True)
    assert built["spec"]["parentRefs"] == PARENTS  # only what was given: Gateway API defaults the rest
    assert built["spec"]["hostnames"] == ["shop.example.com"]
    [rule] = built["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/shop"}}]
    assert rule["backendRefs"] == [{"name": "shop", "port": 8000}]


@pytest.mark.parametrize(
    ("drain", "retry", "expected"),
    [
        ({}, None, {"codes": [503], "attempts": 2}),
        ({"mode": "Readiness"}, None, None),
        ({"mode": "RefuseNewSessions", "enabled": False}, None, None),
        ({"mode": "Readiness"}, {"attempts": 4}, {"codes": [503], "attempts": 4}),
        (
            {},
            {"attempts": 3, "codes": [502, 503], "backoff": "50ms"},
            {"codes": [502, 503], "attempts": 3, "backoff": "50ms"},
        ),
    ],
    ids=["refuse-new-sessions-default", "readiness", "drain-disabled", "readiness-explicit", "explicit"],
)
def test_a_503_is_retried_when_drains_refuse_new_sessions_or_when_asked(
    drain: dict[str, Any], retry: dict[str, Any] | None, expected: dict[str, Any] | None
) -> None:
    wanted: dict[str, Any] = {"parentRefs": PARENTS}
    if retry is not None:
        wanted["retry"] = retry
    [rule] = route(route=wanted, scaleIn={"drain": drain})["spec"]["rules"]
    assert rule.get("retry") == expected


def test_cookie_persistence_only_where_the_installed_crd_serves_it() -> None:
    wanted = {
        "parentRefs": PARENTS,
        "sessionPersistence": {"enabled": True, "lifetimeType": "Permanent", "absoluteTimeout": "8h"},
    }
    [rule] = route(route=wanted)["spec"]["rules"]
    assert rule["sessionPersistence"] == {
        "type": "Cookie",
        "cookie": {"name": "WAS_STICKY", "lifetimeType": "Permanent"},
        "absoluteTimeout": "8h",
    }
    [rule] = route(False, route=wanted)["spec"]["rules"]
    assert "sessionPersistence" not in rule
    [rule] = route(route={"parentRefs": PARENTS})["spec"]["rules"]
    assert "sessionPersistence" not in rule, "not asked for"


def test_filters_labels_and_annotations_pass_through_and_our_labels_win() -> None:
    middleware = {
        "type": "ExtensionRef",
        "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": "retry"},
    }
    built = route(
        route={
            "parentRefs": PARENTS,
            "filters": [middleware],
            "labels": {"team": "shop", "webappscaler.io/scaling": "other"},
            "annotations": {"note": "x"},
        }
    )
    [rule] = built["spec"]["rules"]
    assert rule["filters"] == [middleware]
    assert built["metadata"]["labels"]["team"] == "shop"
    assert built["metadata"]["labels"]["webappscaler.io/scaling"] == "shop"
    assert built["metadata"]["annotations"] == {"note": "x"}
