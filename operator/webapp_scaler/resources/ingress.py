"""The Ingress: host, class, TLS, and each controller's annotations — a sticky cookie so each user keeps
reaching the VM holding their session and, when drains refuse new sessions, a retry of the 503 a draining
VM answers to a request without a session. `spec.ingress.controller` picks whose annotations; `Any`
writes every documented controller's (each ignores the others').

Some controllers read their cookie from the Service, not the Ingress (Traefik, HAProxy Kubernetes Ingress
Controller): `service_annotations` gives those, and `build_service` writes them.
"""

from __future__ import annotations

from typing import Any

from webapp_scaler import naming
from webapp_scaler.resources.owner import common_labels, owner_reference
from webapp_scaler.webappscaling import RETRY_ATTEMPTS, DrainSpec, IngressController, IngressSpec, WebAppScaling

NGINX = "nginx.ingress.kubernetes.io/"
HAPROXY_INGRESS = "haproxy-ingress.github.io/"
HAPROXY_ORG = "haproxy.org/"
TRAEFIK = "traefik.ingress.kubernetes.io/"


def _for(controller: IngressController, which: IngressController) -> bool:
    return controller in ("Any", which)


def ingress_annotations(ingress: IngressSpec, drain: DrainSpec) -> dict[str, str]:
    """The generated Ingress annotations (the user's `spec.ingress.annotations` are added over them)."""
    cookie = ingress.sticky_cookie
    controller = ingress.controller
    annotations: dict[str, str] = {}
    if _for(controller, "IngressNginx"):
        if cookie.enabled:
            annotations |= {
                f"{NGINX}affinity": "cookie",
                f"{NGINX}affinity-mode": "persistent",
                f"{NGINX}session-cookie-name": cookie.name,
            }
            if cookie.max_age_seconds > 0:
                annotations[f"{NGINX}session-cookie-max-age"] = str(cookie.max_age_seconds)
                annotations[f"{NGINX}session-cookie-expires"] = str(cookie.max_age_seconds)
        if drain.refuses_new_sessions:
            # a draining VM's 503 to a sessionless request: try the next VM (tries count the first one)
            annotations[f"{NGINX}proxy-next-upstream"] = "error timeout http_503"
            annotations[f"{NGINX}proxy-next-upstream-tries"] = str(RETRY_ATTEMPTS + 1)
    if _for(controller, "HAProxyIngress") and cookie.enabled:
        annotations |= {
            f"{HAPROXY_INGRESS}affinity": "cookie",
            f"{HAPROXY_INGRESS}session-cookie-name": cookie.name,
            f"{HAPROXY_INGRESS}session-cookie-strategy": "insert",
        }
    return annotations


def service_annotations(ingress: IngressSpec) -> dict[str, str]:
    """Cookie annotations that their controllers read from the Service behind the Ingress: Traefik
    (github.com/traefik/traefik/v3@v3.6.12 pkg/provider/kubernetes/ingress/kubernetes.go parses
    `service.Annotations`) and the HAProxy Kubernetes Ingress Controller (haproxytech/kubernetes-ingress
    documentation/annotations.md: cookie-persistence "is resolved at the service level")."""
    cookie = ingress.sticky_cookie
    if not ingress.enabled or not cookie.enabled:
        return {}
    annotations: dict[str, str] = {}
    if _for(ingress.controller, "Traefik"):
        annotations |= {f"{TRAEFIK}service.sticky.cookie": "true", f"{TRAEFIK}service.sticky.cookie.name": cookie.name}
        if cookie.max_age_seconds > 0:
            annotations[f"{TRAEFIK}service.sticky.cookie.maxage"] = str(cookie.max_age_seconds)
    if _for(ingress.controller, "HAProxy"):
        annotations[f"{HAPROXY_ORG}cookie-persistence"] = cookie.name
    return annotations


def build_ingress(owner: WebAppScaling) -> dict[str, Any] | None:
    """The Ingress manifest, or None when `spec.ingress.enabled` is false."""
    spec = owner.spec
    ingress = spec.workload.ingress
    if not ingress.enabled:
        return None
    backend = {"service": {"name": naming.service_name(owner.name), "port": {"number": spec.workload.service.port}}}
    rule: dict[str, Any] = {"http": {"paths": [{"path": ingress.path, "pathType": "Prefix", "backend": backend}]}}
    if ingress.host:
        rule["host"] = ingress.host
    body: dict[str, Any] = {"rules": [rule]}
    if ingress.class_name:
        body["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name:
        body["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    generated = ingress_annotations(ingress, spec.scaling.scale_in.drain)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": naming.ingress_name(owner.name),
            "namespace": owner.namespace,
            "labels": common_labels(owner),
            # the user's annotations win over the generated ones
            "annotations": {**generated, **ingress.annotations},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": body,
    }
