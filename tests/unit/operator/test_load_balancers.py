"""What the operator concludes from the installed Gateway API CRD and from the controllers in front of the
VMs: sessionPersistence served or not, and which drain mode loses sessions behind which controller."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from webapp_scaler import load_balancers, webappscaling
from webapp_scaler.constants import Reason
from webapp_scaler.load_balancers import GatewayParent
from webapp_scaler_dev.devcluster import gateway_api_crds

TRAEFIK = GatewayParent("gateways", "public", "traefik", "traefik.io/gateway-controller")
OTHER = GatewayParent("gateways", "internal", "envoy", "gateway.envoyproxy.io/gatewayclass-controller")


def httproute_crd(channel: str) -> dict[str, Any]:
    """The pinned Gateway API release's HTTPRoute CRD (fetched into the cache when missing)."""
    path = gateway_api_crds(channel, build=True) / "gateway.networking.k8s.io_httproutes.yaml"
    return dict(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(("channel", "served"), [("standard", False), ("experimental", True)])
def test_session_persistence_is_read_from_the_installed_crd(channel: str, served: bool) -> None:
    api = load_balancers.gateway_api(httproute_crd(channel))
    assert (api.installed, api.session_persistence, api.channel, api.version) == (True, served, channel, "v1.7.0")


def test_no_crd_means_no_gateway_api() -> None:
    assert load_balancers.gateway_api(None) == load_balancers.GatewayAPI(installed=False)
    only_beta = {"spec": {"versions": [{"name": "v1beta1", "served": True}]}}
    assert not load_balancers.gateway_api(only_beta).installed


def route(**spec: Any) -> webappscaling.RouteSpec:
    body = {
        "metadata": {"name": "shop", "namespace": "prod"},
        "spec": {
            "goldenImage": {"name": "g"},
            "vmTemplate": {"spec": {"domain": {}}},
            "route": {"parentRefs": [{"name": "public", "namespace": "gateways"}], **spec},
        },
    }
    found = webappscaling.parse_valid(body).spec.workload.route
    assert found is not None
    return found


READINESS = webappscaling.DrainSpec(mode="Readiness")
REFUSE = webappscaling.DrainSpec(mode="RefuseNewSessions")


def test_a_readiness_drain_behind_traefik_loses_sessions() -> None:
    [concern] = load_balancers.gateway_concerns(READINESS, route(), [TRAEFIK, OTHER])
    assert concern.reason is Reason.DRAIN_LOSES_SESSIONS
    assert "Gateway gateways/public (GatewayClass traefik) is served by Traefik" in concern.message
    assert "use RefuseNewSessions" in concern.message


def test_refusing_new_sessions_behind_traefik_needs_a_retry_filter() -> None:
    [concern] = load_balancers.gateway_concerns(REFUSE, route(), [TRAEFIK])
    assert concern.reason is Reason.RETRY_NOT_IMPLEMENTED
    middleware = {"type": "ExtensionRef", "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": "r"}}
    assert load_balancers.gateway_concerns(REFUSE, route(filters=[middleware]), [TRAEFIK]) == []
    assert load_balancers.gateway_concerns(REFUSE, route(), [OTHER]) == []
    assert load_balancers.gateway_concerns(webappscaling.DrainSpec(enabled=False), route(), [TRAEFIK]) == []


def test_session_persistence_concerns() -> None:
    experimental = load_balancers.GatewayAPI(True, session_persistence=True, channel="experimental")
    standard = load_balancers.GatewayAPI(True, session_persistence=False, channel="standard", version="v1.7.0")
    asked = route(sessionPersistence={"enabled": True})
    assert load_balancers.session_persistence_concern(route(), standard) is None
    assert load_balancers.session_persistence_concern(asked, experimental, [OTHER]) is None
    unserved = load_balancers.session_persistence_concern(asked, standard)
    assert unserved and unserved.reason is Reason.SESSION_PERSISTENCE_UNSUPPORTED
    assert "the installed Gateway API (standard channel v1.7.0) has no HTTPRoute sessionPersistence" in unserved.message
    ignored = load_balancers.session_persistence_concern(asked, experimental, [TRAEFIK])
    assert ignored and "ignores HTTPRoute sessionPersistence" in ignored.message


@pytest.mark.parametrize(
    ("drain", "ingress", "reason"),
    [
        (READINESS, {"controller": "IngressNginx"}, Reason.DRAIN_LOSES_SESSIONS),
        (READINESS, {"controller": "Traefik"}, Reason.DRAIN_LOSES_SESSIONS),
        (READINESS, {"controller": "Any"}, None),  # nothing known about the controller
        (READINESS, {"controller": "HAProxyIngress"}, None),
        (REFUSE, {"controller": "IngressNginx"}, None),  # build_ingress writes its retry
        (REFUSE, {"controller": "Traefik"}, Reason.RETRY_NOT_IMPLEMENTED),
        (
            REFUSE,
            {
                "controller": "Traefik",
                "annotations": {load_balancers.TRAEFIK_ROUTER_MIDDLEWARES: "prod-retry@kubernetescrd"},
            },
            None,
        ),
    ],
)
def test_ingress_concerns(drain: webappscaling.DrainSpec, ingress: dict[str, Any], reason: Reason | None) -> None:
    parsed = webappscaling.parse_valid(
        {
            "metadata": {"name": "shop", "namespace": "prod"},
            "spec": {
                "goldenImage": {"name": "g"},
                "vmTemplate": {"spec": {"domain": {}}},
                "ingress": {"enabled": True, **ingress},
            },
        }
    ).spec.workload.ingress
    found = load_balancers.ingress_concerns(drain, parsed)
    assert [c.reason for c in found] == ([reason] if reason else [])
