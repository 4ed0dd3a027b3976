"""The WebAppScaling parser: defaults from one place, camelCase in, clear errors naming the field."""

from __future__ import annotations

import re
from typing import Any

import pytest

from webapp_scaler import webappscaling


def test_empty_spec_gives_the_documented_defaults() -> None:
    spec = webappscaling.ScalingSpec.from_spec({})
    assert spec == webappscaling.ScalingSpec()
    assert spec.sessions.target_per_vm == 80
    assert spec.sessions.moving_average == webappscaling.MovingAverageSpec(kind="Simple", window_seconds=120)
    assert spec.behavior.scale_down.stabilization_window_seconds == 60  # HPA: 300, see webappscaling.py
    assert spec.behavior.scale_up == webappscaling.HPA_SCALE_UP
    assert spec.warm_pool.size == 2
    assert spec.behavior.scale_up.policies == (
        webappscaling.ScalingPolicy("Percent", 100, 15),
        webappscaling.ScalingPolicy("VMs", 4, 15),
    )
    assert spec.scale_in == webappscaling.ScaleInSpec(order="FewestSessions", drain=webappscaling.DrainSpec(True, 3600))


def test_camel_case_fields_are_read() -> None:
    spec = webappscaling.ScalingSpec.from_spec(
        {
            "paused": True,
            "mode": "External",
            "replicas": {"min": 2, "max": 30, "desired": 7},
            "sessions": {
                "targetPerVM": 50,
                "agent": {"port": 8080, "path": "/m", "metric": "s", "drainPath": "/d"},
                "scrapeIntervalSeconds": 10,
                "scrapeTimeoutSeconds": 3,
                "movingAverage": {"kind": "Exponential", "windowSeconds": 300},
            },
            "behavior": {
                "tolerance": 0.05,
                "scaleUp": {
                    "stabilizationWindowSeconds": 30,
                    "selectPolicy": "Min",
                    "policies": [{"type": "VMs", "value": 2, "periodSeconds": 60}],
                },
                "scaleDown": {"selectPolicy": "Disabled", "policies": []},
            },
            "scaleIn": {"order": "Oldest", "drain": {"enabled": False, "timeoutSeconds": 60}},
            "warmPool": {"size": 3},
            "prediction": {"enabled": False, "horizonSeconds": 120, "damping": 0.8},
            "goldenImage": {"name": "ignored-here"},
        }
    )
    assert spec.paused and spec.mode == "External"
    assert spec.replicas == webappscaling.ReplicasSpec(min=2, max=30, desired=7)
    assert spec.sessions.target_per_vm == 50.0
    assert spec.sessions.agent == webappscaling.AgentSpec(8080, "/m", "s", "/d")
    assert spec.sessions.moving_average == webappscaling.MovingAverageSpec("Exponential", 300)
    assert spec.behavior.scale_up == webappscaling.ScalingRules(30, "Min", (webappscaling.ScalingPolicy("VMs", 2, 60),))
    assert spec.behavior.scale_down.select_policy == "Disabled"
    assert spec.scale_in == webappscaling.ScaleInSpec("Oldest", webappscaling.DrainSpec(False, 60))
    assert spec.warm_pool.size == 3
    assert spec.prediction == webappscaling.PredictionSpec(enabled=False, horizon_seconds=120, damping=0.8)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"sessions": {"targetPerVM": 0}}, "spec.sessions.targetPerVM", id="zero-target"),
        pytest.param({"sessions": {"targetPerVM": float("nan")}}, "spec.sessions.targetPerVM", id="nan-target"),
        pytest.param({"replicas": {"min": 5, "max": 2}}, "spec.replicas.max", id="max-below-min"),
        pytest.param({"replicas": {"min": -1}}, "spec.replicas.min", id="negative-min"),
        pytest.param({"replicas": {"max": "ten"}}, "spec.replicas.max", id="string-max"),
        pytest.param({"behavior": {"tolerance": 1.5}}, "spec.behavior.tolerance", id="tolerance-above-1"),
        pytest.param(
            {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1}]}}},
            "spec.behavior.scaleUp.policies[0].type",
            id="unknown-policy-type",
        ),
        pytest.param(
            {"behavior": {"scaleDown": {"policies": [{"type": "VMs", "value": 0, "periodSeconds": 15}]}}},
            "spec.behavior.scaleDown.policies[0].value",
            id="zero-policy-value",
        ),
        pytest.param(
            {"behavior": {"scaleDown": {"policies": []}}}, "spec.behavior.scaleDown.policies", id="no-policies"
        ),
        pytest.param(
            {"sessions": {"movingAverage": {"kind": "Weighted"}}},
            "spec.sessions.movingAverage.kind",
            id="unknown-average",
        ),
        pytest.param(
            {"sessions": {"scrapeIntervalSeconds": 5, "scrapeTimeoutSeconds": 10}},
            "spec.sessions.scrapeTimeoutSeconds",
            id="timeout-above-interval",
        ),
        pytest.param({"warmPool": {"size": -2}}, "spec.warmPool.size", id="negative-warm-pool"),
        pytest.param({"paused": "yes"}, "spec.paused", id="string-paused"),
        pytest.param({"sessions": {"agent": {"port": 70000}}}, "spec.sessions.agent.port", id="port-range"),
        pytest.param({"prediction": {"damping": 0}}, "spec.prediction.damping", id="zero-damping"),
        pytest.param({"scaleIn": []}, "spec.scaleIn", id="list-for-object"),
    ],
)
def test_impossible_values_name_their_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(field) + ": "):
        webappscaling.ScalingSpec.from_spec(spec)


# ---- the workload half and the whole object ------------------------------------------------------------

BODY: dict[str, Any] = {
    "metadata": {"name": "shop", "namespace": "prod", "uid": "u-1", "generation": 4},
    "spec": {"goldenImage": {"name": "golden"}, "vmTemplate": {"spec": {"domain": {}}}},
    "status": {"desiredReplicas": 2},
}


def with_spec(**spec: Any) -> dict[str, Any]:
    return {**BODY, "spec": {**BODY["spec"], **spec}}


def test_the_whole_object_is_parsed_with_its_identity_and_last_status() -> None:
    was = webappscaling.parse(BODY)
    assert isinstance(was, webappscaling.WebAppScaling)
    assert (was.name, was.namespace, was.uid, was.generation) == ("shop", "prod", "u-1", 4)
    assert was.status == {"desiredReplicas": 2}
    workload = was.spec.workload
    assert workload.golden_image == webappscaling.GoldenImageSpec(name="golden", namespace="prod")
    assert workload.service == webappscaling.ServiceSpec()
    assert workload.ingress == webappscaling.IngressSpec()
    assert workload.drain_token is None


def test_workload_fields_are_read() -> None:
    spec = webappscaling.parse_valid(
        with_spec(
            goldenImage={
                "kind": "DataSource",
                "name": "fedora",
                "namespace": "images",
                "storage": {"size": "20Gi", "storageClassName": "fast", "accessModes": ["ReadWriteMany"]},
            },
            vmTemplate={"metadata": {"labels": {"app": "shop"}}, "rootDiskName": "system", "spec": {"domain": {}}},
            service={"type": "NodePort", "port": 8000, "targetPort": 9000, "sessionAffinityTimeoutSeconds": 60},
            ingress={
                "enabled": True,
                "host": "shop.example.com",
                "className": "traefik",
                "path": "/app",
                "tls": {"secretName": "shop-tls"},
                "stickyCookie": {"name": "PIN", "maxAgeSeconds": 600},
                "annotations": {"a": "b"},
            },
            sessions={"agent": {"drainTokenSecretRef": {"name": "drain", "key": "bearer"}}},
        )
    ).spec.workload
    assert spec.golden_image == webappscaling.GoldenImageSpec(
        name="fedora",
        namespace="images",
        kind="DataSource",
        storage=webappscaling.CloneStorage("20Gi", "fast", ("ReadWriteMany",)),
    )
    assert (spec.vm_template.labels, spec.vm_template.root_disk_name) == ({"app": "shop"}, "system")
    assert spec.service == webappscaling.ServiceSpec("NodePort", 8000, 9000, "ClientIP", 60)
    assert spec.ingress.tls_secret_name == "shop-tls" and spec.ingress.class_name == "traefik"
    assert spec.ingress.sticky_cookie == webappscaling.StickyCookieSpec(True, "PIN", 600)
    assert spec.drain_token == webappscaling.SecretKeyRef("drain", "bearer")


def test_the_vm_template_is_a_private_copy() -> None:
    body = with_spec(vmTemplate={"spec": {"domain": {"devices": {}}}})
    was = webappscaling.parse_valid(body)
    body["spec"]["vmTemplate"]["spec"]["domain"]["devices"]["disks"] = [{"name": "x"}]
    assert was.spec.workload.vm_template.spec == {"domain": {"devices": {}}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"goldenImage": {}}, "spec.goldenImage.name: is required"),
        ({"goldenImage": {"name": "g", "kind": "Snapshot"}}, "spec.goldenImage.kind: must be one of"),
        ({"goldenImage": {"name": "g", "storage": {"size": ["1Gi"]}}}, "spec.goldenImage.storage.size: must be a"),
        ({"vmTemplate": {}}, "spec.vmTemplate.spec: is required"),
        ({"vmTemplate": {"spec": {}, "metadata": {"labels": {"a": 1}}}}, "spec.vmTemplate.metadata.labels: must map"),
        ({"service": {"port": 70000}}, "spec.service.port: must be <= 65535"),
        (
            {"service": {"sessionAffinity": "None", "sessionAffinityTimeoutSeconds": 5}},
            "spec.service.sessionAffinityTimeoutSeconds: needs sessionAffinity ClientIP",
        ),
        ({"ingress": {"tls": {"secretName": "t"}}}, "spec.ingress.tls: needs spec.ingress.host"),
        ({"ingress": {"tls": {}, "host": "a.example"}}, "spec.ingress.tls.secretName: is required"),
        ({"ingress": {"annotations": ["a"]}}, "spec.ingress.annotations: must map strings to strings"),
        (
            {"sessions": {"agent": {"drainTokenSecretRef": {"key": "k"}}}},
            "spec.sessions.agent.drainTokenSecretRef.name: is required",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_a_bad_workload_field_is_named_and_nothing_raises(spec: dict[str, Any], message: str) -> None:
    was = webappscaling.parse(with_spec(**spec))
    assert isinstance(was, webappscaling.InvalidWebAppScaling)
    assert was.error.startswith(message), was.error
    assert (was.name, was.generation, was.status) == ("shop", 4, {"desiredReplicas": 2})
    with pytest.raises(webappscaling.SpecError, match=re.escape(message)):
        webappscaling.parse_valid(with_spec(**spec))


# ---- drain modes, agent sources, ingress controllers and routes -------------------------------------------


def test_drains_refuse_new_sessions_through_the_proxy_source_by_default() -> None:
    spec = webappscaling.ScalingSpec()
    assert (spec.scale_in.drain.mode, spec.sessions.agent.source) == ("RefuseNewSessions", "proxy")
    assert spec.scale_in.drain.refuses_new_sessions
    assert not webappscaling.DrainSpec(enabled=False).refuses_new_sessions
    assert not webappscaling.DrainSpec(mode="Readiness").refuses_new_sessions


@pytest.mark.parametrize("source", ["tomcat", "connections", "push"])
def test_a_source_outside_the_request_path_needs_the_readiness_mode(source: str) -> None:
    with pytest.raises(webappscaling.SpecError) as refused:
        webappscaling.ScalingSpec.from_spec({"sessions": {"agent": {"source": source}}})
    assert str(refused.value) == webappscaling.DRAIN_MODE_NEEDS_PROXY
    spec = webappscaling.ScalingSpec.from_spec(
        {"sessions": {"agent": {"source": source}}, "scaleIn": {"drain": {"mode": "Readiness"}}}
    )
    assert (spec.sessions.agent.source, spec.scale_in.drain.mode) == (source, "Readiness")


def test_route_fields_are_read() -> None:
    was = webappscaling.parse_valid(
        with_spec(
            ingress={"enabled": True, "controller": "Traefik"},
            route={
                "parentRefs": [
                    {"name": "public", "namespace": "gateways", "sectionName": "https", "port": 443},
                    {"name": "mesh", "group": "", "kind": "Service"},
                ],
                "hostnames": ["shop.example.com", "*.shop.example.com"],
                "path": "/shop",
                "retry": {"attempts": 3, "codes": [502, 503], "backoff": "100ms"},
                "sessionPersistence": {
                    "enabled": True,
                    "cookieName": "SHOP",
                    "lifetimeType": "Permanent",
                    "absoluteTimeout": "8h",
                },
                "filters": [
                    {
                        "type": "ExtensionRef",
                        "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": "retry"},
                    }
                ],
                "annotations": {"a": "b"},
                "labels": {"team": "shop"},
            },
        )
    )
    assert was.spec.workload.ingress.controller == "Traefik"
    route = was.spec.workload.route
    assert route == webappscaling.RouteSpec(
        parent_refs=(
            webappscaling.ParentRef("public", namespace="gateways", section_name="https", port=443),
            webappscaling.ParentRef("mesh", group="", kind="Service"),
        ),
        hostnames=("shop.example.com", "*.shop.example.com"),
        path="/shop",
        retry=webappscaling.RouteRetrySpec(attempts=3, codes=(502, 503), backoff="100ms"),
        session_persistence=webappscaling.SessionPersistenceSpec(True, "SHOP", "Permanent", "8h"),
        filters=(
            {"type": "ExtensionRef", "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": "retry"}},
        ),
        annotations={"a": "b"},
        labels={"team": "shop"},
    )


def test_a_route_with_only_its_parents_takes_the_defaults() -> None:
    route = webappscaling.parse_valid(with_spec(route={"parentRefs": [{"name": "gw"}]})).spec.workload.route
    assert route == webappscaling.RouteSpec(parent_refs=(webappscaling.ParentRef("gw"),))
    assert route.retry is None, "not given: the builder decides by the drain mode"
    assert route.session_persistence.cookie_name == webappscaling.StickyCookieSpec().name
    assert webappscaling.parse_valid(with_spec()).spec.workload.route is None
    explicit = webappscaling.parse_valid(with_spec(route={"parentRefs": [{"name": "gw"}], "retry": {}}))
    assert explicit.spec.workload.route and explicit.spec.workload.route.retry == webappscaling.RouteRetrySpec(
        2, (503,)
    )


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({}, webappscaling.ROUTE_NEEDS_PARENTS),
        ({"parentRefs": []}, webappscaling.ROUTE_NEEDS_PARENTS),
        ({"parentRefs": [{"namespace": "gw"}]}, "spec.route.parentRefs[0].name: is required"),
        ({"parentRefs": [{"name": "gw", "port": 0}]}, "spec.route.parentRefs[0].port: must be at least 1"),
        ({"parentRefs": [{"name": "gw"}], "retry": {"attempts": 1}}, webappscaling.RETRY_ATTEMPTS_RANGE),
        ({"parentRefs": [{"name": "gw"}], "retry": {"attempts": 11}}, webappscaling.RETRY_ATTEMPTS_RANGE),
        ({"parentRefs": [{"name": "gw"}], "retry": {"codes": [200]}}, "spec.route.retry.codes: must be a list"),
        ({"parentRefs": [{"name": "gw"}], "retry": {"backoff": "1 second"}}, "spec.route.retry.backoff: must be a"),
        ({"parentRefs": [{"name": "gw"}], "hostnames": ["Shop.Example"]}, "spec.route.hostnames: must be a list"),
        ({"parentRefs": [{"name": "gw"}], "path": "shop"}, "spec.route.path: must start with /"),
        (
            {"parentRefs": [{"name": "gw"}], "sessionPersistence": {"lifetimeType": "Permanent"}},
            webappscaling.PERMANENT_COOKIE_NEEDS_TIMEOUT,
        ),
        (
            {"parentRefs": [{"name": "gw"}], "sessionPersistence": {"cookieName": "a b"}},
            "spec.route.sessionPersistence.cookieName: must be a cookie name",
        ),
        ({"parentRefs": [{"name": "gw"}], "filters": [{"requestHeaderModifier": {}}]}, "spec.route.filters: must be"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_a_bad_route_is_refused_in_admissions_words_or_naming_its_field(route: dict[str, Any], message: str) -> None:
    was = webappscaling.parse(with_spec(route=route))
    assert isinstance(was, webappscaling.InvalidWebAppScaling)
    assert was.error.startswith(message), was.error


def test_an_unknown_ingress_controller_is_named() -> None:
    was = webappscaling.parse(with_spec(ingress={"controller": "nginx"}))
    assert isinstance(was, webappscaling.InvalidWebAppScaling)
    assert was.error.startswith("spec.ingress.controller: must be one of Any, IngressNginx, Traefik")
