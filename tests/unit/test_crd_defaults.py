"""The CRD's defaults and the parser's defaults are the same values: a minimal WebAppScaling defaulted by
the apiserver parses to exactly what the operator assumes for a missing field — for the scaling half the
engine reads and for the workload half the builders read."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from webapp_scaler import webappscaling

# the fields the CRD requires, and an object whose defaults only exist once it is present
MINIMAL = {
    "goldenImage": {"name": "g"},
    "vmTemplate": {"spec": {"domain": {}}},
    "sessions": {"agent": {"drainTokenSecretRef": {"name": "drain"}}},
    "ingress": {"tls": {"secretName": "tls"}, "host": "shop.example.com"},
    # a route with a retry and a timeout, so the defaults inside them exist (Permanent needs the timeout)
    "route": {"parentRefs": [{"name": "gw"}], "retry": {}, "sessionPersistence": {"absoluteTimeout": "1h"}},
}


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / "webappscaling.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def apply_defaults(schema: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """Structural defaulting as the apiserver does it: a missing field with a default gets it, then the
    defaulting continues inside every object that is present."""
    for name, child in (schema.get("properties") or {}).items():
        if name not in obj and "default" in child:
            obj[name] = copy.deepcopy(child["default"])
        if isinstance(obj.get(name), dict) and child.get("type") == "object":
            apply_defaults(child, obj[name])
    return obj


def parsed(spec: dict[str, Any]) -> webappscaling.Spec:
    return webappscaling.parse_valid({"metadata": {"name": "shop", "namespace": "prod"}, "spec": spec}).spec


def test_crd_defaults_equal_parser_defaults() -> None:
    defaulted = apply_defaults(spec_schema(), copy.deepcopy(MINIMAL))
    assert defaulted != MINIMAL  # the CRD did default something
    assert parsed(defaulted) == parsed(copy.deepcopy(MINIMAL))
    assert parsed(defaulted).scaling == webappscaling.ScalingSpec()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("sessions.targetPerVM", 81),
        ("sessions.movingAverage.windowSeconds", 121),
        ("sessions.scrapeIntervalSeconds", 16),
        ("sessions.agent.port", 9101),
        ("sessions.agent.drainTokenSecretRef.key", "secret"),
        ("scaleIn.drain.timeoutSeconds", 1801),
        ("replicas.max", 11),
        ("goldenImage.kind", "DataSource"),
        ("vmTemplate.rootDiskName", "system"),
        ("service.port", 8080),
        ("service.targetPort", 8081),
        ("service.sessionAffinity", "None"),
        ("ingress.path", "/shop"),
        ("ingress.stickyCookie.name", "OTHER"),
        ("ingress.stickyCookie.maxAgeSeconds", 60),
        ("ingress.controller", "Traefik"),
        ("scaleIn.drain.mode", "Readiness"),
        ("route.path", "/shop"),
        ("route.retry.attempts", 3),
        ("route.retry.codes", [502, 503]),
        ("route.sessionPersistence.enabled", True),
        ("route.sessionPersistence.cookieName", "OTHER"),
        ("route.sessionPersistence.lifetimeType", "Permanent"),
    ],
    ids=lambda v: str(v),
)
def test_the_comparison_would_notice_a_different_default(path: str, value: Any) -> None:
    assert_noticed(path, value, copy.deepcopy(MINIMAL))


def test_the_comparison_would_notice_a_different_agent_source() -> None:
    """Any source but proxy needs the Readiness drain mode (a CEL rule): given here, so the source's
    default alone differs."""
    given = copy.deepcopy(MINIMAL)
    given["scaleIn"] = {"drain": {"mode": "Readiness"}}
    assert_noticed("sessions.agent.source", "push", given)


def assert_noticed(path: str, value: Any, given: dict[str, Any]) -> None:
    schema = copy.deepcopy(spec_schema())
    node = schema
    for key in path.split("."):
        node = node["properties"][key]
    node["default"] = value
    defaulted = apply_defaults(schema, copy.deepcopy(given))
    assert parsed(defaulted) != parsed(copy.deepcopy(given))
