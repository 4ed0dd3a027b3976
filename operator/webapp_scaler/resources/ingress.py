"""The Ingress: host, class, TLS, and a sticky cookie so each user keeps reaching the VM holding their
session. The cookie is written for the three common controllers; each ignores the others' annotations."""

from __future__ import annotations

from typing import Any

from webapp_scaler import naming
from webapp_scaler.resources.owner import common_labels, owner_reference
from webapp_scaler.webappscaling import StickyCookieSpec, WebAppScaling


def sticky_cookie_annotations(cookie: StickyCookieSpec) -> dict[str, str]:
    if not cookie.enabled:
        return {}
    annotations = {
        # ingress-nginx
        "nginx.ingress.kubernetes.io/affinity": "cookie",
        "nginx.ingress.kubernetes.io/affinity-mode": "persistent",
        "nginx.ingress.kubernetes.io/session-cookie-name": cookie.name,
        # HAProxy Ingress (haproxy-ingress.github.io)
        "haproxy-ingress.github.io/affinity": "cookie",
        "haproxy-ingress.github.io/session-cookie-name": cookie.name,
        "haproxy-ingress.github.io/session-cookie-strategy": "insert",
        # HAProxy Kubernetes Ingress Controller (haproxy.org)
        "haproxy.org/cookie-persistence": cookie.name,
    }
    if cookie.max_age_seconds > 0:
        annotations["nginx.ingress.kubernetes.io/session-cookie-max-age"] = str(cookie.max_age_seconds)
        annotations["nginx.ingress.kubernetes.io/session-cookie-expires"] = str(cookie.max_age_seconds)
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
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": naming.ingress_name(owner.name),
            "namespace": owner.namespace,
            "labels": common_labels(owner),
            # the user's annotations win over the generated ones
            "annotations": {**sticky_cookie_annotations(ingress.sticky_cookie), **ingress.annotations},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": body,
    }
