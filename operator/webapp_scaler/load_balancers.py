"""What the operator knows about the load balancers in front of the VMs, and what follows for a drain.

A drain keeps a VM's users only if the load balancer keeps sending them there: in `Readiness` mode it
must keep routing cookie-pinned requests to a not-ready endpoint; in `RefuseNewSessions` mode it must
retry a 503 on another VM. Some controllers are known (from their source) to do neither; this module
holds that small table and turns it, with the installed Gateway API CRD, into concerns a person reads in
the `DrainReady` and `RouteReady` conditions. Pure: the reconciler reads the objects and passes them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webapp_scaler.constants import GATEWAY_GROUP, HTTPROUTE_CRD, Reason
from webapp_scaler.webappscaling import DrainSpec, IngressSpec, RouteSpec

# where a Traefik Ingress gets a retry: a Middleware the user names (Traefik has no retry annotation)
TRAEFIK_ROUTER_MIDDLEWARES = "traefik.ingress.kubernetes.io/router.middlewares"


@dataclass(frozen=True, slots=True)
class ControllerFacts:
    """What one controller does with a draining VM, and the file of its source that says so."""

    name: str
    drops_not_ready: bool  # builds its backends from ready endpoints only: a Readiness drain cuts users off
    route_retry: bool  # implements HTTPRoute `retry`
    session_persistence: bool  # implements HTTPRoute `sessionPersistence`
    source: str


# Gateway controllers by GatewayClass `spec.controllerName`.
GATEWAY_CONTROLLERS: Mapping[str, ControllerFacts] = {
    "traefik.io/gateway-controller": ControllerFacts(
        name="Traefik",
        drops_not_ready=True,
        route_retry=False,
        session_persistence=False,
        source=(
            "github.com/traefik/traefik/v3@v3.6.12 pkg/provider/kubernetes/gateway/kubernetes.go "
            "(getBackendAddresses skips endpoints whose Ready condition is not true) and httproute.go "
            "(reads neither retry nor sessionPersistence)"
        ),
    ),
}

# Ingress controllers by `spec.ingress.controller` (Any says nothing about which one runs).
INGRESS_CONTROLLERS: Mapping[str, ControllerFacts] = {
    "IngressNginx": ControllerFacts(
        name="ingress-nginx",
        drops_not_ready=True,
        route_retry=True,  # proxy-next-upstream http_503, which build_ingress writes
        session_persistence=True,
        source="kubernetes/ingress-nginx internal/ingress/controller/endpointslices.go (skips !Conditions.Ready)",
    ),
    "Traefik": ControllerFacts(
        name="Traefik",
        drops_not_ready=True,
        route_retry=False,  # only through a retry Middleware the user attaches
        session_persistence=True,
        source=(
            "github.com/traefik/traefik/v3@v3.6.12 pkg/provider/kubernetes/ingress/kubernetes.go "
            "(servers only from endpoints whose Serving condition is true)"
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Concern:
    """One reason a condition is not True, in the words of its message."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class RouteVerdict:
    """The RouteReady condition's content: whether the HTTPRoute is out as asked, and why not."""

    ready: bool
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class GatewayAPI:
    """The Gateway API as the installed HTTPRoute CRD serves it."""

    installed: bool
    session_persistence: bool = False  # the served v1 schema has spec.rules[].sessionPersistence
    channel: str = ""  # the CRD's gateway.networking.k8s.io/channel annotation: standard or experimental
    version: str = ""  # its gateway.networking.k8s.io/bundle-version
    readable: bool = True  # False: the operator may not read the CRD, so it cannot tell what it serves

    def describe(self) -> str:
        if not self.readable:
            return f"the CRD {HTTPROUTE_CRD}, which the operator may not read (RBAC: get customresourcedefinitions),"
        found = " ".join(part for part in (self.channel and f"{self.channel} channel", self.version) if part)
        return f"the installed Gateway API ({found})" if found else "the installed Gateway API"


UNREADABLE_GATEWAY_API = GatewayAPI(installed=True, readable=False)


def gateway_api(crd: Mapping[str, Any] | None) -> GatewayAPI:
    """What the CRD `httproutes.gateway.networking.k8s.io` (as the API returns it, or None when there is
    none) serves. `sessionPersistence` is experimental: only the experimental channel's schema has it, and
    the standard channel's prunes (or, with strict field validation, rejects) it — so look, don't guess."""
    if crd is None:
        return GatewayAPI(installed=False)
    annotations = (crd.get("metadata") or {}).get("annotations") or {}
    served = [v for v in (crd.get("spec") or {}).get("versions") or [] if v.get("name") == "v1" and v.get("served")]
    if not served:
        return GatewayAPI(installed=False, version=str(annotations.get(f"{GATEWAY_GROUP}/bundle-version", "")))
    schema = ((served[0].get("schema") or {}).get("openAPIV3Schema") or {}).get("properties") or {}
    rules = ((schema.get("spec") or {}).get("properties") or {}).get("rules") or {}
    rule = (rules.get("items") or {}).get("properties") or {}
    return GatewayAPI(
        installed=True,
        session_persistence="sessionPersistence" in rule,
        channel=str(annotations.get(f"{GATEWAY_GROUP}/channel", "")),
        version=str(annotations.get(f"{GATEWAY_GROUP}/bundle-version", "")),
    )


@dataclass(frozen=True, slots=True)
class GatewayParent:
    """A route parent the reconciler resolved: the Gateway, its class and the class's controller."""

    namespace: str
    name: str
    gateway_class: str
    controller: str


def session_persistence_concern(
    route: RouteSpec, api: GatewayAPI, parents: Sequence[GatewayParent] = ()
) -> Concern | None:
    """Cookie persistence asked for but not served by the installed CRD (the route goes out without it),
    or served but ignored by a parent's controller."""
    if not route.session_persistence.enabled:
        return None
    if not api.session_persistence:
        return Concern(
            Reason.SESSION_PERSISTENCE_UNSUPPORTED,
            f"spec.route.sessionPersistence is enabled but {api.describe()} has no HTTPRoute sessionPersistence "
            "(an experimental-channel field): the HTTPRoute is written without it; install the experimental "
            "channel's CRDs or pin users with the controller's own means (docs/operator.md)",
        )
    for parent in parents:
        facts = GATEWAY_CONTROLLERS.get(parent.controller)
        if facts is not None and not facts.session_persistence:
            return Concern(
                Reason.SESSION_PERSISTENCE_UNSUPPORTED,
                f"{_served_by(parent, facts)}, which ignores HTTPRoute sessionPersistence: users are not pinned "
                "to their VM by it",
            )
    return None


def _served_by(parent: GatewayParent, facts: ControllerFacts) -> str:
    return (
        f"Gateway {parent.namespace}/{parent.name} (GatewayClass {parent.gateway_class}) is served by "
        f"{facts.name} ({parent.controller})"
    )


def gateway_concerns(drain: DrainSpec, route: RouteSpec, parents: Sequence[GatewayParent]) -> list[Concern]:
    """What the route's Gateways' controllers do to a drain in this mode."""
    concerns: list[Concern] = []
    has_extension_filter = any(f.get("type") == "ExtensionRef" for f in route.filters)
    for parent in parents:
        facts = GATEWAY_CONTROLLERS.get(parent.controller)
        if facts is None or not drain.enabled:
            continue
        where = _served_by(parent, facts)
        if drain.mode == "Readiness" and facts.drops_not_ready:
            concerns.append(
                Concern(
                    Reason.DRAIN_LOSES_SESSIONS,
                    f"{where}, which drops not-ready endpoints: with spec.scaleIn.drain.mode Readiness the users "
                    "of a draining VM lose their session; use RefuseNewSessions",
                )
            )
        if drain.mode == "RefuseNewSessions" and not facts.route_retry and not has_extension_filter:
            concerns.append(
                Concern(
                    Reason.RETRY_NOT_IMPLEMENTED,
                    f"{where}, which ignores HTTPRoute retry: a new user sent to a draining VM gets its 503; add a "
                    "retry on 503 through spec.route.filters (Traefik: an ExtensionRef to a retry Middleware with "
                    'status ["503"], which Traefik has from v3.7; docs/load-balancers.md)',
                )
            )
    return concerns


def ingress_concerns(drain: DrainSpec, ingress: IngressSpec) -> list[Concern]:
    """A Readiness drain behind an ingress controller known to drop not-ready endpoints, or a
    RefuseNewSessions drain behind one that retries a 503 only when the user attached a retry."""
    facts = INGRESS_CONTROLLERS.get(ingress.controller)
    if not ingress.enabled or facts is None or not drain.enabled:
        return []
    where = f"spec.ingress.controller {ingress.controller}: {facts.name}"
    if drain.mode == "Readiness" and facts.drops_not_ready:
        return [
            Concern(
                Reason.DRAIN_LOSES_SESSIONS,
                f"{where} drops not-ready endpoints, so with spec.scaleIn.drain.mode Readiness the users of a "
                "draining VM lose their session; use RefuseNewSessions",
            )
        ]
    if (
        drain.mode == "RefuseNewSessions"
        and not facts.route_retry
        and TRAEFIK_ROUTER_MIDDLEWARES not in ingress.annotations
    ):
        return [
            Concern(
                Reason.RETRY_NOT_IMPLEMENTED,
                f"{where} retries a 503 only through a retry Middleware: a new user sent to a draining VM gets its "
                f"503; name one in spec.ingress.annotations {TRAEFIK_ROUTER_MIDDLEWARES} (a retry with "
                'status ["503"], Traefik v3.7 or later; docs/load-balancers.md)',
            )
        ]
    return []
