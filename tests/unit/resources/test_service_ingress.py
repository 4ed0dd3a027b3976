"""build_service and build_ingress: selectors, affinity, host, class, TLS and sticky cookies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.resources.test_virtualmachine import owner
from webapp_scaler.resources import build_ingress, build_service


def test_service_selects_the_vms_and_keeps_clients_on_their_vm() -> None:
    service = build_service(owner(service={"port": 80, "targetPort": 8080, "sessionAffinity": "ClientIP"}))
    assert service["metadata"]["name"] == "shop"
    assert service["metadata"]["ownerReferences"][0]["kind"] == "WebAppScaling"
    assert service["spec"]["selector"] == {"webappscaler.io/scaling": "shop"}
    assert service["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert "sessionAffinityConfig" not in service["spec"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"sessionAffinity": "ClientIP", "sessionAffinityTimeoutSeconds": 600},
            {"clientIP": {"timeoutSeconds": 600}},
        ),
        ({"sessionAffinity": "None"}, None),
    ],
    ids=["client-ip-timeout", "no-affinity"],
)
def test_service_affinity_config(spec: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert build_service(owner(service=spec))["spec"].get("sessionAffinityConfig") == expected


def test_no_ingress_unless_enabled() -> None:
    assert build_ingress(owner()) is None
    assert build_ingress(owner(ingress={"enabled": False, "host": "a.example"})) is None


def test_ingress_routes_host_path_tls_to_the_service() -> None:
    ingress = build_ingress(
        owner(
            service={"port": 8000},
            ingress={
                "enabled": True,
                "host": "shop.example.com",
                "path": "/app",
                "className": "nginx",
                "tls": {"secretName": "shop-tls"},
            },
        )
    )
    assert ingress is not None
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
    [rule] = spec["rules"]
    assert rule["host"] == "shop.example.com"
    [path] = rule["http"]["paths"]
    assert path == {
        "path": "/app",
        "pathType": "Prefix",
        "backend": {"service": {"name": "shop", "port": {"number": 8000}}},
    }


@pytest.mark.parametrize(
    ("cookie", "present", "absent"),
    [
        (
            {},
            {
                "nginx.ingress.kubernetes.io/affinity": "cookie",
                "nginx.ingress.kubernetes.io/session-cookie-name": "WAS_STICKY",
                "haproxy-ingress.github.io/affinity": "cookie",
                "haproxy-ingress.github.io/session-cookie-name": "WAS_STICKY",
                "haproxy.org/cookie-persistence": "WAS_STICKY",
            },
            ["nginx.ingress.kubernetes.io/session-cookie-max-age"],
        ),
        (
            {"name": "SHOPVM", "maxAgeSeconds": 3600},
            {
                "nginx.ingress.kubernetes.io/session-cookie-name": "SHOPVM",
                "nginx.ingress.kubernetes.io/session-cookie-max-age": "3600",
                "haproxy-ingress.github.io/session-cookie-name": "SHOPVM",
            },
            [],
        ),
        ({"enabled": False}, {}, ["nginx.ingress.kubernetes.io/affinity", "haproxy.org/cookie-persistence"]),
    ],
    ids=["defaults", "named-with-max-age", "disabled"],
)
def test_sticky_cookie_annotations(cookie: dict[str, Any], present: dict[str, str], absent: list[str]) -> None:
    ingress = build_ingress(owner(ingress={"enabled": True, "stickyCookie": cookie}))
    assert ingress is not None
    annotations = ingress["metadata"]["annotations"]
    assert present.items() <= annotations.items()
    assert not set(absent) & annotations.keys()


def test_user_annotations_win() -> None:
    ingress = build_ingress(
        owner(
            ingress={
                "enabled": True,
                "annotations": {"nginx.ingress.kubernetes.io/affinity-mode": "balanced"},
            }
        )
    )
    assert ingress is not None
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity-mode"] == "balanced"
