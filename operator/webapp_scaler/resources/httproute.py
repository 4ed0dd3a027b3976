"""The HTTPRoute (Gateway API `gateway.networking.k8s.io/v1`) of `spec.route`: the user's parents and host
names, one rule sending the path prefix to the Service, a retry of a draining VM's 503 when drains refuse
new sessions, cookie session persistence when asked and served, and the user's pass-through filters.

Field names as in Gateway API v1.7.0's CRDs (config/crd/{standard,experimental}/
gateway.networking.k8s.io_httproutes.yaml): `retry` {codes, attempts, backoff} is in the standard
channel; `sessionPersistence` {type, cookie {name, lifetimeType}, absoluteTimeout} only in the
experimental one, so the caller says whether the cluster serves it (the reconciler reads the installed
CRD: `load_balancers.gateway_api`).
"""

from __future__ import annotations

import copy
from typing import Any

from webapp_scaler import naming
from webapp_scaler.constants import GATEWAY_GROUP, GATEWAY_VERSION
from webapp_scaler.resources.owner import common_labels, owner_reference
from webapp_scaler.webappscaling import ParentRef, RouteRetrySpec, RouteSpec, WebAppScaling


def route_retry(owner: WebAppScaling) -> RouteRetrySpec | None:
    """The retry the route carries: the user's when given, else the default one when drains refuse new
    sessions (a refused request was not processed, so another VM may take it), else none."""
    route = owner.spec.workload.route
    if route is not None and route.retry is not None:
        return route.retry
    return RouteRetrySpec() if owner.spec.scaling.scale_in.drain.refuses_new_sessions else None


def build_httproute(owner: WebAppScaling, *, session_persistence_served: bool) -> dict[str, Any] | None:
    """The HTTPRoute manifest, or None without `spec.route`. `session_persistence_served`: the installed
    HTTPRoute CRD has `sessionPersistence`; without it the field is left out (and a condition says so)."""
    route = owner.spec.workload.route
    if route is None:
        return None
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
        "backendRefs": [{"name": naming.service_name(owner.name), "port": owner.spec.workload.service.port}],
    }
    if route.filters:
        rule["filters"] = [copy.deepcopy(dict(f)) for f in route.filters]
    retry = route_retry(owner)
    if retry is not None:
        rule["retry"] = {"codes": list(retry.codes), "attempts": retry.attempts}
        if retry.backoff:
            rule["retry"]["backoff"] = retry.backoff
    persistence = _session_persistence(route) if session_persistence_served else None
    if persistence:
        rule["sessionPersistence"] = persistence
    spec: dict[str, Any] = {"parentRefs": [_parent(p) for p in route.parent_refs], "rules": [rule]}
    if route.hostnames:
        spec["hostnames"] = list(route.hostnames)
    metadata: dict[str, Any] = {
        "name": naming.route_name(owner.name),
        "namespace": owner.namespace,
        "labels": {**route.labels, **common_labels(owner)},  # ours win: the operator selects on them
        "ownerReferences": [owner_reference(owner)],
    }
    if route.annotations:
        metadata["annotations"] = dict(route.annotations)
    return {"apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}", "kind": "HTTPRoute", "metadata": metadata, "spec": spec}


def _parent(parent: ParentRef) -> dict[str, Any]:
    """Only what the user gave: Gateway API defaults the rest (group, kind Gateway, the route's namespace)."""
    fields = {
        "group": parent.group,
        "kind": parent.kind,
        "namespace": parent.namespace,
        "name": parent.name,
        "sectionName": parent.section_name,
        "port": parent.port,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _session_persistence(route: RouteSpec) -> dict[str, Any] | None:
    wanted = route.session_persistence
    if not wanted.enabled:
        return None
    persistence: dict[str, Any] = {
        "type": "Cookie",
        "cookie": {"name": wanted.cookie_name, "lifetimeType": wanted.lifetime_type},
    }
    if wanted.absolute_timeout:
        persistence["absoluteTimeout"] = wanted.absolute_timeout
    return persistence
