"""The HTTPRoutes the operator builds against Gateway API v1.7.0's real CRDs, each release channel
installed on its own: accepted as built (nothing pruned) by both channels, `sessionPersistence` only by
the experimental one — which is why the operator reads the installed CRD instead of guessing — and the
operator's own API calls (server-side apply, reads, delete, the CRD read) against the real apiserver."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kubernetes
import pytest

from tests.integration.conftest import Kubectl
from tests.integration.gateway_api import HTTPROUTE_CRD, install_gateway_api
from webapp_scaler import load_balancers, webappscaling
from webapp_scaler.k8s import Kube
from webapp_scaler.resources import build_httproute
from webapp_scaler_dev.devcluster import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds_installed")]

UID = "3f0c8a9e-0b1d-4c6e-9a52-7d2f1e0b4a11"
PARENT = {"name": "public", "namespace": "gateways", "sectionName": "https", "port": 443}
PERSISTENCE = {"enabled": True, "cookieName": "SHOP_VM", "lifetimeType": "Permanent", "absoluteTimeout": "8h"}
SPECS: dict[str, dict[str, Any]] = {
    "minimal": {"route": {"parentRefs": [{"name": "public"}]}},
    "full": {
        "route": {
            "parentRefs": [PARENT, {"name": "internal", "kind": "Gateway", "group": "gateway.networking.k8s.io"}],
            "hostnames": ["shop.example.com", "*.shop.example.com"],
            "path": "/shop",
            "retry": {"attempts": 3, "codes": [502, 503], "backoff": "100ms"},
            "filters": [
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-Shop", "value": "1"}]}}
            ],
            "labels": {"team": "shop"},
            "annotations": {"example.com/owner": "shop"},
        },
        "service": {"port": 8080},
    },
    "readiness-without-retry": {"route": {"parentRefs": [PARENT]}, "scaleIn": {"drain": {"mode": "Readiness"}}},
    "session-persistence": {"route": {"parentRefs": [PARENT], "sessionPersistence": PERSISTENCE}},
    "session-cookie": {"route": {"parentRefs": [PARENT], "sessionPersistence": {"enabled": True}}},
}


def owner(namespace: str, uid: str = UID, **spec: Any) -> webappscaling.WebAppScaling:
    body = {
        "metadata": {"name": "shop", "namespace": namespace, "uid": uid},
        "spec": {"goldenImage": {"name": "golden"}, "vmTemplate": {"spec": {"domain": {}}}, **spec},
    }
    return webappscaling.parse_valid(body)


def dry_run_create(kubectl: Kubectl, namespace: str, obj: dict[str, Any], *, strict: bool = True) -> Any:
    validate = "--validate=strict" if strict else "--validate=false"
    return kubectl(
        "create",
        "--dry-run=server",
        validate,
        "-n",
        namespace,
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(obj),
        check=False,
    )


def differences(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Where the stored object lacks or changed what was sent (the apiserver's defaults may add fields)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        return [d for key, value in sent.items() for d in differences(value, stored.get(key), f"{path}.{key}")]
    if isinstance(sent, list) and isinstance(stored, list) and len(sent) == len(stored):
        return [d for i, (a, b) in enumerate(zip(sent, stored, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if sent == stored else [f"{path}: sent {sent!r}, stored {stored!r}"]


@pytest.mark.parametrize("channel", ["standard", "experimental"])
def test_the_operators_httproutes_are_accepted_as_built_by_each_channel(
    kubectl: Kubectl, namespace: str, channel: str
) -> None:
    install_gateway_api(kubectl, channel)
    for name, spec in SPECS.items():
        route = build_httproute(owner(namespace, **spec), session_persistence_served=channel == "experimental")
        assert route is not None
        result = dry_run_create(kubectl, namespace, route)
        assert result.returncode == 0, f"{name} on {channel}: {result.stderr}"
        stored = json.loads(result.stdout)
        assert differences(route["spec"], stored["spec"]) == [], name
        assert differences(route["metadata"]["labels"], stored["metadata"]["labels"]) == []
        if name.startswith("session") and channel == "experimental":
            assert "sessionPersistence" in stored["spec"]["rules"][0]


def test_the_standard_channel_refuses_or_silently_drops_session_persistence(kubectl: Kubectl, namespace: str) -> None:
    """Why the operator detects the channel: with strict field validation the standard CRD refuses the
    experimental field, without it the field is pruned without a word — a route that looks applied but
    pins nobody."""
    install_gateway_api(kubectl, "standard")
    route = build_httproute(owner(namespace, **SPECS["session-persistence"]), session_persistence_served=True)
    assert route is not None
    refused = dry_run_create(kubectl, namespace, route)
    assert refused.returncode != 0
    assert 'unknown field "spec.rules[0].sessionPersistence"' in refused.stderr
    pruned = dry_run_create(kubectl, namespace, route, strict=False)
    assert pruned.returncode == 0, pruned.stderr
    assert "sessionPersistence" not in json.loads(pruned.stdout)["spec"]["rules"][0]


def kube(cluster: DevCluster) -> Kube:
    return Kube(kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig)))


@pytest.mark.parametrize(("channel", "served"), [("standard", False), ("experimental", True)])
def test_the_operator_reads_what_the_installed_crd_serves(
    cluster: DevCluster, kubectl: Kubectl, channel: str, served: bool
) -> None:
    install_gateway_api(kubectl, channel)
    api = load_balancers.gateway_api(asyncio.run(kube(cluster).get_crd(HTTPROUTE_CRD)))
    assert (api.installed, api.session_persistence, api.channel, api.version) == (True, served, channel, "v1.7.0")
    assert asyncio.run(kube(cluster).get_crd("nothing.example.com")) is None


def test_the_operators_api_calls_for_routes_and_gateways(cluster: DevCluster, kubectl: Kubectl, namespace: str) -> None:
    """Server-side apply under the operator's field manager (a field no longer sent is removed), the
    ownership read, the Gateway and GatewayClass reads, the delete — against the real apiserver."""
    install_gateway_api(kubectl, "experimental")
    was = {
        "apiVersion": "webappscaler.io/v1alpha1",
        "kind": "WebAppScaling",
        "metadata": {"name": "shop"},
        "spec": {"goldenImage": {"name": "golden"}, "vmTemplate": {"spec": {"domain": {}}}},
    }
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(was))
    uid = json.loads(kubectl("get", "-n", namespace, "was/shop", "-o", "json").stdout)["metadata"]["uid"]
    client = kube(cluster)

    refusing = build_httproute(owner(namespace, uid, **SPECS["session-cookie"]), session_persistence_served=True)
    assert refusing is not None
    asyncio.run(client.apply(refusing))
    found = asyncio.run(client.get_network_object("HTTPRoute", namespace, "shop"))
    assert found is not None and found["spec"]["rules"][0]["retry"] == {"codes": [503], "attempts": 2}
    managers = {(m["manager"], m["operation"]) for m in found["metadata"]["managedFields"]}
    assert ("webapp-scaler", "Apply") in managers
    assert found["metadata"]["ownerReferences"][0]["uid"] == uid

    readiness = {**SPECS["session-cookie"], "scaleIn": {"drain": {"mode": "Readiness"}}}
    asyncio.run(
        client.apply(build_httproute(owner(namespace, uid, **readiness), session_persistence_served=True) or {})
    )
    found = asyncio.run(client.get_network_object("HTTPRoute", namespace, "shop"))
    assert found is not None and "retry" not in found["spec"]["rules"][0], "a field no longer sent is removed"

    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "gateway.networking.k8s.io/v1",
                        "kind": "GatewayClass",
                        "metadata": {"name": f"traefik-{namespace}"},
                        "spec": {"controllerName": "traefik.io/gateway-controller"},
                    },
                    {
                        "apiVersion": "gateway.networking.k8s.io/v1",
                        "kind": "Gateway",
                        "metadata": {"name": "public"},
                        "spec": {
                            "gatewayClassName": f"traefik-{namespace}",
                            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
                        },
                    },
                ],
            }
        ),
    )
    gateway = asyncio.run(client.get_gateway(namespace, "public"))
    assert gateway is not None and gateway["spec"]["gatewayClassName"] == f"traefik-{namespace}"
    gateway_class = asyncio.run(client.get_gateway_class(f"traefik-{namespace}"))
    assert gateway_class is not None and gateway_class["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert asyncio.run(client.get_gateway(namespace, "absent")) is None

    asyncio.run(client.delete_route(namespace, "shop"))
    assert asyncio.run(client.get_network_object("HTTPRoute", namespace, "shop")) is None
    asyncio.run(client.delete_route(namespace, "shop"))  # already gone: no error
    kubectl("delete", "gatewayclass", f"traefik-{namespace}", "--wait=false")
