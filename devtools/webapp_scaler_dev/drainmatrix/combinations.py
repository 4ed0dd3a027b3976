"""The drain matrix, pure: which load balancer × route × drain mode combinations exist, which we support,
the WebAppScaling each one runs, and the table the measurements become.

A combination is *supported* when we promise it loses no session and shows users no error across a
scale-in; the end-to-end test holds every supported one to exactly that, and the table shows what every
combination measured, supported or not, so a claim and its evidence sit side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from webapp_scaler_dev.demo.stack import AGENT_PORT, vm_template

NAME = "shop"
GATEWAY = "web"
MODES = ("Readiness", "RefuseNewSessions")


@dataclass(frozen=True, order=True)
class Combination:
    balancer: str  # haproxy | nginx | traefik
    route: str  # EndpointSlices (a follower of ours configures the proxy) | Ingress | HTTPRoute
    mode: str  # spec.scaleIn.drain.mode

    @property
    def slug(self) -> str:
        mode = {"Readiness": "ready", "RefuseNewSessions": "refuse"}[self.mode]
        return f"{self.balancer}-{self.route.lower()}-{mode}"

    @property
    def label(self) -> str:
        return f"{BALANCERS[self.balancer]} · {self.route} · {self.mode}"


BALANCERS = {
    "haproxy": "HAProxy (haproxy-ingress, drain support)",
    "nginx": "nginx (cookie hash, next upstream on 503)",
    "traefik": "Traefik v3.6",
}

ALL: tuple[Combination, ...] = tuple(
    Combination(balancer, route, mode)
    for balancer, route in (
        ("haproxy", "EndpointSlices"),
        ("nginx", "EndpointSlices"),
        ("traefik", "Ingress"),
        ("traefik", "HTTPRoute"),
    )
    for mode in MODES
)

SUPPORTED: dict[Combination, str] = {
    Combination("haproxy", "EndpointSlices", "Readiness"): (
        "a not-ready endpoint stays as a weight-0 server: cookie-pinned users still reach it, nobody new does"
    ),
    Combination("haproxy", "EndpointSlices", "RefuseNewSessions"): (
        "`retry-on 503` + `option redispatch` send a refused request to another server"
    ),
    Combination("nginx", "EndpointSlices", "RefuseNewSessions"): (
        "`proxy_next_upstream http_503 non_idempotent` tries the next server on the hash ring"
    ),
}

WHY_NOT: dict[Combination, str] = {
    Combination("nginx", "EndpointSlices", "Readiness"): (
        "a not-ready endpoint leaves the upstream, so its users are hashed to a VM without their session"
    ),
    Combination("traefik", "Ingress", "Readiness"): (
        "the Ingress provider keeps only `serving` endpoints: the sticky cookie of a not-ready VM is rebalanced"
    ),
    Combination("traefik", "Ingress", "RefuseNewSessions"): (
        "v3.6 retries only requests not yet written to a server, so a new user who lands on the draining VM"
        " gets its 503 (v3.7's retry middleware adds `status`, not buildable from this module proxy)"
    ),
    Combination("traefik", "HTTPRoute", "Readiness"): (
        "the Gateway provider implements neither `sessionPersistence` nor `retry`: no stickiness at all"
    ),
    Combination("traefik", "HTTPRoute", "RefuseNewSessions"): (
        "the Gateway provider implements neither `sessionPersistence` nor `retry`: no stickiness at all"
    ),
}

SHORT: tuple[Combination, ...] = tuple(c for c in ALL if c in SUPPORTED)
"""The CI form: every supported combination (each must show 0 lost, 0 errors)."""


@dataclass(frozen=True)
class MatrixSettings:
    """Three VMs, then two: one scale-in per combination, with shoppers arriving all the time."""

    vms_before: int = 3
    vms_after: int = 2
    users: int = 24
    """Concurrent shoppers: about 8 per VM, so the VM chosen for the drain always holds sessions to keep."""
    warmup_s: float = 10.0
    sessions_per_vm_before_drain: int = 3
    """The scale-in starts once every VM holds at least this many sessions (after the warm-up)."""
    after_delete_s: float = 5.0
    drain_timeout_s: int = 60
    idle_timeout_s: int = 30
    """Sessions end by logout (every shopper logs out), so the idle timeout only bounds abandoned ones; far
    above the think time, so a shopper stalled a few seconds on a busy host is not expired under it."""
    think_s: tuple[float, float] = (0.4, 1.2)
    actions: tuple[int, int] = (4, 8)
    scrape_s: int = 1
    clone_s: float = 1.0
    boot_s: float = 1.0
    parallel: int = 3
    timeout_s: float = 240.0
    probes: int = 20
    """New visitors sent at once when the drain starts, so some of them reach the draining VM."""


def webappscaling(combination: Combination, namespace: str, settings: MatrixSettings, vms: int) -> dict[str, Any]:
    """The WebAppScaling of one combination: `vms` VMs exactly, drained in the combination's mode."""
    spec: dict[str, Any] = {
        "goldenImage": {"name": "webshop-golden"},
        # three misses, not one: on a loaded machine a single slow probe must not flap a VM out of nginx's
        # hash ring (or make the operator count it as booting)
        "vmTemplate": vm_template(NAME, failure_threshold=3),
        "replicas": {"min": vms, "max": vms},
        "sessions": {
            "targetPerVM": 1000,
            "scrapeIntervalSeconds": settings.scrape_s,
            "scrapeTimeoutSeconds": 1,
            "movingAverage": {"kind": "Simple", "windowSeconds": 5},
            "agent": {"drainTokenSecretRef": {"name": "agent-drain", "key": "token"}},
        },
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "VMs", "value": 1, "periodSeconds": 5}],
            }
        },
        "scaleIn": {"drain": {"enabled": True, "timeoutSeconds": settings.drain_timeout_s, "mode": combination.mode}},
        "warmPool": {"size": 0},
        "prediction": {"enabled": False},
        "service": {"port": 80, "targetPort": AGENT_PORT},
    }
    if combination.route == "Ingress":
        spec["ingress"] = {"enabled": True, "className": "traefik", "controller": "Traefik"}
    elif combination.route == "HTTPRoute":
        spec["route"] = {"parentRefs": [{"name": GATEWAY}]}
    return {
        "apiVersion": "webappscaler.io/v1alpha1",
        "kind": "WebAppScaling",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": spec,
    }


@dataclass
class Outcome:
    """What one combination measured across its scale-in."""

    combination: Combination
    users: int = 0
    requests: int = 0
    sessions_lost: int = 0
    errors: int = 0
    turned_away: int = 0
    served_by_draining: int = 0
    drained_vm: str | None = None
    drain_to_delete_s: float | None = None
    probes: int = 0  # sessionless requests sent when the drain began
    probes_ok: int = 0  # ... answered 200 (by some VM)
    refused_by_draining: int = 0  # ... of them the draining VM's agent refused (and the balancer retried)
    failure: str | None = None  # the run itself failed (bring-up, timeout): no figures
    losses: list[str] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def supported(self) -> bool:
        return self.combination in SUPPORTED

    @property
    def clean(self) -> bool:
        """No session lost, no error a user saw, and the scale-in finished."""
        return (
            self.failure is None
            and self.sessions_lost == 0
            and self.errors == 0
            and self.turned_away == 0
            and self.probes_ok == self.probes
            and self.drain_to_delete_s is not None
        )


def markdown_table(outcomes: Iterable[Outcome]) -> str:
    rows = [
        "| load balancer · route · drain mode | supported | users | requests | sessions lost | errors users saw"
        " | served by the draining VM | new visitors at drain start: answered (refused by it) | drain → deleted |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in sorted(outcomes, key=lambda o: ALL.index(o.combination)):
        if o.failure is not None:
            rows.append(f"| {o.combination.label} | {_yes(o)} | – | – | – | – | – | – | run failed: {o.failure} |")
            continue
        errors = o.errors + o.turned_away
        delete = f"{o.drain_to_delete_s:.0f} s" if o.drain_to_delete_s is not None else "not deleted"
        rows.append(
            f"| {o.combination.label} | {_yes(o)} | {o.users} | {o.requests} | {o.sessions_lost} | {errors}"
            f" | {o.served_by_draining} | {o.probes_ok}/{o.probes} ({o.refused_by_draining}) | {delete} |"
        )
    return "\n".join(rows)


def reasons(combinations: Sequence[Combination]) -> str:
    lines = []
    for c in combinations:
        why = SUPPORTED.get(c) or WHY_NOT.get(c, "")
        lines.append(f"- **{c.label}** — {'supported' if c in SUPPORTED else 'not supported'}: {why}.")
    return "\n".join(lines)


def _yes(outcome: Outcome) -> str:
    return "yes" if outcome.supported else "no"
