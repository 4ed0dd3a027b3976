"""build_service and build_ingress: selectors, affinity, host, class, TLS, and each ingress controller's
sticky-cookie and retry annotations (on the Ingress, or on the Service where the controller reads them)."""

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
        ({"enabled": False}, {}, ["nginx.ingress.kubernetes.io/affinity", "haproxy-ingress.github.io/affinity"]),
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


NGINX, HAPROXY_INGRESS = "nginx.ingress.kubernetes.io/", "haproxy-ingress.github.io/"
TRAEFIK, HAPROXY_ORG = "traefik.ingress.kubernetes.io/", "haproxy.org/"


def prefixes(annotations: dict[str, str]) -> set[str]:
    return {key.split("/")[0] + "/" for key in annotations}


@pytest.mark.parametrize(
    ("controller", "on_ingress", "on_service"),
    [
        ("Any", {NGINX, HAPROXY_INGRESS}, {TRAEFIK, HAPROXY_ORG}),
        ("IngressNginx", {NGINX}, set()),
        ("HAProxyIngress", {HAPROXY_INGRESS}, set()),
        ("Traefik", set(), {TRAEFIK}),
        ("HAProxy", set(), {HAPROXY_ORG}),
    ],
)
def test_each_controller_gets_only_its_own_annotations(
    controller: str, on_ingress: set[str], on_service: set[str]
) -> None:
    was = owner(ingress={"enabled": True, "controller": controller})
    ingress = build_ingress(was)
    assert ingress is not None
    assert prefixes(ingress["metadata"]["annotations"]) == on_ingress
    assert prefixes(build_service(was)["metadata"].get("annotations", {})) == on_service


def test_traefik_and_haproxy_read_their_cookie_from_the_service() -> None:
    service = build_service(owner(ingress={"enabled": True, "stickyCookie": {"name": "SHOP", "maxAgeSeconds": 600}}))
    assert service["metadata"]["annotations"] == {
        f"{TRAEFIK}service.sticky.cookie": "true",
        f"{TRAEFIK}service.sticky.cookie.name": "SHOP",
        f"{TRAEFIK}service.sticky.cookie.maxage": "600",
        f"{HAPROXY_ORG}cookie-persistence": "SHOP",
    }


@pytest.mark.parametrize(
    "spec",
    [{}, {"ingress": {"enabled": False}}, {"ingress": {"enabled": True, "stickyCookie": {"enabled": False}}}],
    ids=["no-ingress", "disabled", "no-cookie"],
)
def test_no_service_annotations_without_an_ingress_cookie(spec: dict[str, Any]) -> None:
    assert "annotations" not in build_service(owner(**spec))["metadata"]


@pytest.mark.parametrize(
    ("drain", "retried"),
    [({}, True), ({"mode": "Readiness"}, False), ({"enabled": False}, False)],
    ids=["refuse-new-sessions", "readiness", "no-drain"],
)
def test_ingress_nginx_retries_a_draining_vms_503_when_drains_refuse_new_sessions(
    drain: dict[str, Any], retried: bool
) -> None:
    ingress = build_ingress(owner(ingress={"enabled": True, "controller": "IngressNginx"}, scaleIn={"drain": drain}))
    assert ingress is not None
    annotations = ingress["metadata"]["annotations"]
    expected = {f"{NGINX}proxy-next-upstream": "error timeout http_503", f"{NGINX}proxy-next-upstream-tries": "3"}
    assert (expected.items() <= annotations.items()) is retried
    if not retried:
        assert f"{NGINX}proxy-next-upstream" not in annotations
