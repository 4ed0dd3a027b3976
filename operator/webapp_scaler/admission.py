"""The CRD's CEL admission rules, in Python, with the CRD's own messages.

`webapp-scaler render` checks a WebAppScaling without a cluster and should refuse what the apiserver
would refuse, in the same words. The schema's per-field checks (types, enums, ranges, patterns) are the
parser's business (`webappscaling.parse_valid`, which names the field); the cross-field rules and the
formats of every string that becomes a name, label, annotation, host or path live in the CRD as CEL and
are mirrored here, each with the message its CEL rule carries (the formats come from
`webappscaling.FORMATS`, which the parser checks as well, so a stored object from before a rule is
InvalidSpec in the operator). Like the apiserver, the
rules see the object with its defaults. `tests/unit/test_admission.py` checks that every CEL rule of
`crds/webappscaling.yaml` has its twin here with the same message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webapp_scaler import webappscaling as w

NAME_TOO_LONG = (
    "metadata.name must be at most 45 characters: VM and DataVolume names append a suffix and must stay valid "
    "DNS labels (63 characters)"
)
ROOT_DISK_VOLUME = (
    "spec.vmTemplate.spec.volumes must not contain a volume named like rootDiskName; the operator adds it"
)
RESERVED_LABELS = (
    "labels under webappscaler.io/ are set by the operator and cannot be given in spec.vmTemplate.metadata.labels"
)
MIN_ABOVE_MAX = "spec.replicas.min must be less than or equal to spec.replicas.max"
TIMEOUT_ABOVE_INTERVAL = "spec.sessions.scrapeTimeoutSeconds must not exceed spec.sessions.scrapeIntervalSeconds"
WINDOW_BELOW_INTERVAL = (
    "spec.sessions.movingAverage.windowSeconds must be at least spec.sessions.scrapeIntervalSeconds (a window "
    "needs a sample)"
)
AFFINITY_TIMEOUT = "spec.service.sessionAffinityTimeoutSeconds needs sessionAffinity ClientIP"
TLS_NEEDS_HOST = "spec.ingress.tls needs spec.ingress.host"
DESIRED_NEEDS_EXTERNAL = (
    "spec.replicas.desired (what kubectl scale, HPA and KEDA set through the /scale subresource) is followed "
    "only when spec.mode is External: set spec.mode to External to scale by hand or by HPA/KEDA, or leave "
    "spec.replicas.desired unset for the session scaler"
)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _at(obj: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    node: Mapping[str, Any] = obj
    for key in path.split("."):
        node = _map(node.get(key))
    return node


def _value(obj: Mapping[str, Any], key: str, default: Any) -> Any:
    value = obj.get(key)
    return default if value is None else value


def _number(value: Any) -> float | None:
    """The value when it is a number; None otherwise (the schema rejects it, not this rule)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Rule:
    message: str
    holds: Callable[[Mapping[str, Any]], bool]  # the whole object in, with CEL's defaults where it reads them


def _name(body: Mapping[str, Any]) -> bool:
    return len(str(_map(body.get("metadata")).get("name") or "")) <= 45


def _root_disk(body: Mapping[str, Any]) -> bool:
    template = _at(body, "spec.vmTemplate")
    root = _value(template, "rootDiskName", w.ROOT_DISK_NAME)
    volumes = _map(template.get("spec")).get("volumes")
    return not isinstance(volumes, list) or all(_map(v).get("name") != root for v in volumes)


def _labels(body: Mapping[str, Any]) -> bool:
    labels = _at(body, "spec.vmTemplate.metadata.labels")
    return all(not str(k).startswith("webappscaler.io/") for k in labels)


def _replicas(body: Mapping[str, Any]) -> bool:
    r, d = _at(body, "spec.replicas"), w.ReplicasSpec()
    low, high = _number(_value(r, "min", d.min)), _number(_value(r, "max", d.max))
    return low is None or high is None or low <= high


def _scrape_timeout(body: Mapping[str, Any]) -> bool:
    s, d = _at(body, "spec.sessions"), w.SessionsSpec()
    timeout = _number(_value(s, "scrapeTimeoutSeconds", d.scrape_timeout_seconds))
    interval = _number(_value(s, "scrapeIntervalSeconds", d.scrape_interval_seconds))
    return timeout is None or interval is None or timeout <= interval


def _window(body: Mapping[str, Any]) -> bool:
    s, d = _at(body, "spec.sessions"), w.SessionsSpec()
    window = _number(_value(_map(s.get("movingAverage")), "windowSeconds", d.moving_average.window_seconds))
    interval = _number(_value(s, "scrapeIntervalSeconds", d.scrape_interval_seconds))
    return window is None or interval is None or window >= interval


def _affinity(body: Mapping[str, Any]) -> bool:
    service = _at(body, "spec.service")
    affinity = _value(service, "sessionAffinity", w.ServiceSpec().session_affinity)
    return service.get("sessionAffinityTimeoutSeconds") is None or affinity == "ClientIP"


def _tls(body: Mapping[str, Any]) -> bool:
    ingress = _at(body, "spec.ingress")
    return ingress.get("tls") is None or ingress.get("host") is not None


def _desired_needs_external(body: Mapping[str, Any]) -> bool:
    """Admission only, not the parser: a stored object from before this rule keeps scaling by sessions."""
    spec = _map(body.get("spec"))
    mode = _value(spec, "mode", w.ScalingSpec().mode)
    return _at(body, "spec.replicas").get("desired") is None or mode == "External"


def _drain_mode(body: Mapping[str, Any]) -> bool:
    mode = _value(_at(body, "spec.scaleIn.drain"), "mode", w.DrainSpec().mode)
    source = _value(_at(body, "spec.sessions.agent"), "source", w.AgentSpec().source)
    return bool(mode != "RefuseNewSessions" or source == "proxy")


def _route_parents(body: Mapping[str, Any]) -> bool:
    route = _map(body.get("spec")).get("route")
    if not isinstance(route, Mapping):
        return True
    parents = route.get("parentRefs")
    return isinstance(parents, list) and len(parents) > 0


def _retry_attempts(body: Mapping[str, Any]) -> bool:
    attempts = _number(_at(body, "spec.route.retry").get("attempts"))
    return attempts is None or 2 <= attempts <= 10


def _permanent_cookie(body: Mapping[str, Any]) -> bool:
    persistence = _at(body, "spec.route.sessionPersistence")
    return persistence.get("lifetimeType") != "Permanent" or persistence.get("absoluteTimeout") is not None


def _target_port(body: Mapping[str, Any]) -> bool:
    target = _number(_value(_at(body, "spec.service"), "targetPort", w.ServiceSpec().target_port))
    agent = _number(_value(_at(body, "spec.sessions.agent"), "port", w.AgentSpec().port))
    return target is None or agent is None or target != agent


def _agent_paths(body: Mapping[str, Any]) -> bool:
    agent, d = _at(body, "spec.sessions.agent"), w.AgentSpec()
    return bool(_value(agent, "path", d.path) != _value(agent, "drainPath", d.drain_path))


def _format(rule: w.Format) -> Rule:
    """A field's format (`webappscaling.FORMATS`, which the parser checks too) as one more rule."""
    return Rule(rule.message, lambda body: not rule.broken(body))


RULES: tuple[Rule, ...] = (
    Rule(NAME_TOO_LONG, _name),
    Rule(ROOT_DISK_VOLUME, _root_disk),
    Rule(RESERVED_LABELS, _labels),
    Rule(MIN_ABOVE_MAX, _replicas),
    Rule(TIMEOUT_ABOVE_INTERVAL, _scrape_timeout),
    Rule(WINDOW_BELOW_INTERVAL, _window),
    Rule(AFFINITY_TIMEOUT, _affinity),
    Rule(TLS_NEEDS_HOST, _tls),
    Rule(DESIRED_NEEDS_EXTERNAL, _desired_needs_external),
    Rule(w.DRAIN_MODE_NEEDS_PROXY, _drain_mode),
    Rule(w.ROUTE_NEEDS_PARENTS, _route_parents),
    Rule(w.RETRY_ATTEMPTS_RANGE, _retry_attempts),
    Rule(w.PERMANENT_COOKIE_NEEDS_TIMEOUT, _permanent_cookie),
    Rule(w.TARGET_PORT_IS_AGENT_PORT, _target_port),
    Rule(w.AGENT_PATHS_DIFFER, _agent_paths),
    *(_format(f) for f in w.FORMATS),
)


def errors(body: Mapping[str, Any]) -> list[str]:
    """The messages of every CEL rule this WebAppScaling breaks, in the CRD's words."""
    return [rule.message for rule in RULES if not rule.holds(body)]
