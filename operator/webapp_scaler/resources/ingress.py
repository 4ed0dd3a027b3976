"""The Ingress: host, class, TLS, and a sticky cookie so each user keeps reaching the VM holding their
session. The cookie is written for the three common controllers; each ignores the others' annotations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp_scaler import naming
from webapp_scaler.resources.owner import common_labels, owner_reference


def sticky_cookie_annotations(cookie: Mapping[str, Any]) -> dict[str, str]:
    if not cookie.get("enabled", True):
        return {}
    name = str(cookie.get("name", "WAS_STICKY"))
    max_age = int(cookie.get("maxAgeSeconds", 0))
    annotations = {
        # ingress-nginx
        "nginx.ingress.kubernetes.io/affinity": "cookie",
        "nginx.ingress.kubernetes.io/affinity-mode": "persistent",
        "nginx.ingress.kubernetes.io/session-cookie-name": name,
        # HAProxy Ingress (haproxy-ingress.github.io)
        "haproxy-ingress.github.io/affinity": "cookie",
        "haproxy-ingress.github.io/session-cookie-name": name,
        "haproxy-ingress.github.io/session-cookie-strategy": "insert",
        # HAProxy Kubernetes Ingress Controller (haproxy.org)
        "haproxy.org/cookie-persistence": name,
    }
    if max_age > 0:
        annotations["nginx.ingress.kubernetes.io/session-cookie-max-age"] = str(max_age)
        annotations["nginx.ingress.kubernetes.io/session-cookie-expires"] = str(max_age)
    return annotations


def build_ingress(owner: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Ingress manifest, or None when `spec.ingress.enabled` is false."""
    meta, spec = owner["metadata"], owner["spec"]
    ingress = spec.get("ingress") or {}
    if not ingress.get("enabled", False):
        return None
    service = spec.get("service") or {}
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": ingress.get("path", "/"),
                    "pathType": "Prefix",
                    "backend": {
                        "service": {
                            "name": naming.service_name(meta["name"]),
                            "port": {"number": service.get("port", 80)},
                        }
                    },
                }
            ]
        }
    }
    if ingress.get("host"):
        rule["host"] = ingress["host"]
    body: dict[str, Any] = {"rules": [rule]}
    if ingress.get("className"):
        body["ingressClassName"] = ingress["className"]
    if ingress.get("tls"):
        body["tls"] = [{"hosts": [ingress["host"]], "secretName": ingress["tls"]["secretName"]}]
    annotations = {
        **sticky_cookie_annotations(ingress.get("stickyCookie") or {}),
        **(ingress.get("annotations") or {}),
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": naming.ingress_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": common_labels(owner),
            "annotations": annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": body,
    }
