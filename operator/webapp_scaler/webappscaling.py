"""The WebAppScaling custom resource, parsed once into frozen, typed objects.

The operator reads a WebAppScaling here and nowhere else: the handlers, the reconciler and the builders
take a `WebAppScaling`, never the raw body. The spec has two halves: `ScalingSpec`, everything the
engine reads (the benchmark's "default policy" is `ScalingSpec()`), and `WorkloadSpec`, what the
builders and the reconciler need to make VMs, the Service and the Ingress and to talk to the agents.

Every default of the API lives here and only here; `tests/unit/test_crd_defaults.py` checks each one
against the CRD's. Parsing is tolerant (a missing field takes its default, because `kubectl apply` of a
minimal manifest must work) but strict about impossible values: a `SpecError` names the offending field
with its camelCase path, so the operator can put it in a condition.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal, cast

# ---------------------------------------------------------------------------------------------------------
# The scaling half: what the engine reads
# ---------------------------------------------------------------------------------------------------------

MovingAverageKind = Literal["Simple", "Exponential"]
SelectPolicy = Literal["Max", "Min", "Disabled"]
PolicyType = Literal["Percent", "VMs"]
ScaleInOrder = Literal["FewestSessions", "Oldest", "Newest"]
Mode = Literal["Sessions", "External"]
PredictionMethod = Literal["HoltDamped"]


@dataclasses.dataclass(frozen=True, slots=True)
class AgentSpec:
    """Where each VM's session agent answers; the engine never calls it, the operator does."""

    port: int = 9100
    path: str = "/metrics"
    metric: str = "webapp_active_sessions"
    drain_path: str = "/drain"


@dataclasses.dataclass(frozen=True, slots=True)
class MovingAverageSpec:
    """The smoothing of the session indicator: the method's core, so the user picks kind and window."""

    kind: MovingAverageKind = "Simple"
    window_seconds: int = 120


@dataclasses.dataclass(frozen=True, slots=True)
class SessionsSpec:
    target_per_vm: float = 80.0
    agent: AgentSpec = AgentSpec()
    scrape_interval_seconds: int = 15
    scrape_timeout_seconds: int = 5
    moving_average: MovingAverageSpec = MovingAverageSpec()


@dataclasses.dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """One HPA step limit: at most `value` VMs (or percent of the VMs) added/removed per period."""

    type: PolicyType
    value: int
    period_seconds: int


@dataclasses.dataclass(frozen=True, slots=True)
class ScalingRules:
    """One direction of HPA v2's `behavior` (autoscaling/v2 HPAScalingRules)."""

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]


# HPA v2's defaults (k8s.io/kubernetes pkg/apis/autoscaling/v2/defaults.go), with "Pods" read as "VMs".
HPA_SCALE_UP = ScalingRules(
    stabilization_window_seconds=0,
    select_policy="Max",
    policies=(ScalingPolicy("Percent", 100, 15), ScalingPolicy("VMs", 4, 15)),
)
HPA_SCALE_DOWN = ScalingRules(
    stabilization_window_seconds=300,
    select_policy="Max",
    policies=(ScalingPolicy("Percent", 100, 15),),
)
# Our scale-down default differs from HPA's in one number: the stabilization window is 60 s, not 300 s.
# HPA waits five minutes because a pod it removes is gone; a VM we remove is drained first, and a
# draining VM returns to service at once if the load comes back, so a premature scale-down costs no
# capacity. The benchmark (docs/benchmarks.md) measured the shorter window saving VM-minutes with no
# added overload.
SCALE_DOWN_AFTER_DRAIN = dataclasses.replace(HPA_SCALE_DOWN, stabilization_window_seconds=60)


@dataclasses.dataclass(frozen=True, slots=True)
class BehaviorSpec:
    tolerance: float = 0.1
    scale_up: ScalingRules = HPA_SCALE_UP
    scale_down: ScalingRules = SCALE_DOWN_AFTER_DRAIN


# Kubernetes HPA's own default behavior, for the baselines and for pinning HPA semantics in tests.
HPA_BEHAVIOR = BehaviorSpec(tolerance=0.1, scale_up=HPA_SCALE_UP, scale_down=HPA_SCALE_DOWN)


@dataclasses.dataclass(frozen=True, slots=True)
class DrainSpec:
    """Session-aware removal. The timeout is an hour (not HPA-like minutes) because web frameworks keep an
    idle session 20-30 minutes after the user's last click (Tomcat 30, ASP.NET 20, PHP 24): a shorter
    timeout would cut the sessions of users who were active when the drain began."""

    enabled: bool = True
    timeout_seconds: int = 3600


@dataclasses.dataclass(frozen=True, slots=True)
class ScaleInSpec:
    order: ScaleInOrder = "FewestSessions"
    drain: DrainSpec = DrainSpec()


@dataclasses.dataclass(frozen=True, slots=True)
class WarmPoolSpec:
    """Pre-cloned, stopped VMs: starting one skips the clone. Stopped VMs use disk, not CPU or memory.

    Two by default: enough to absorb a sudden spike's first minute at half the lead time of a clone,
    for the price of two root disks."""

    size: int = 2


@dataclasses.dataclass(frozen=True, slots=True)
class PredictionSpec:
    """Holt's linear trend with damping over the raw session total, looked ahead by the boot time.

    `horizon_seconds` 0 means "the measured clone+boot time", so that a VM asked for now is ready when
    the forecast load arrives. The smoothing factors are per scrape interval.
    """

    enabled: bool = True
    method: PredictionMethod = "HoltDamped"
    horizon_seconds: int = 0
    level_smoothing: float = 0.5
    trend_smoothing: float = 0.3
    damping: float = 0.9


@dataclasses.dataclass(frozen=True, slots=True)
class ReplicasSpec:
    min: int = 1
    max: int = 10
    desired: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ScalingSpec:
    """Everything in a WebAppScaling spec that the engine reads."""

    paused: bool = False
    mode: Mode = "Sessions"
    replicas: ReplicasSpec = ReplicasSpec()
    sessions: SessionsSpec = SessionsSpec()
    behavior: BehaviorSpec = BehaviorSpec()
    scale_in: ScaleInSpec = ScaleInSpec()
    warm_pool: WarmPoolSpec = WarmPoolSpec()
    prediction: PredictionSpec = PredictionSpec()

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> ScalingSpec:
        """Parse the scaling half of the CR's `spec` (camelCase); the fields of the workload half are ignored."""
        return _parse_spec(_Reader(spec or {}, "spec"))


# ---------------------------------------------------------------------------------------------------------
# The workload half: what the builders and the reconciler read
# ---------------------------------------------------------------------------------------------------------

GoldenImageKind = Literal["DataVolume", "PersistentVolumeClaim", "DataSource"]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
SessionAffinity = Literal["None", "ClientIP"]


@dataclasses.dataclass(frozen=True, slots=True)
class CloneStorage:
    """`spec.storage` of every clone; what is unset CDI infers from the source."""

    size: str | None = None
    storage_class_name: str | None = None
    access_modes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class GoldenImageSpec:
    """The disk cloned into every VM. `namespace` is resolved: the WebAppScaling's own when unset."""

    name: str
    namespace: str
    kind: GoldenImageKind = "DataVolume"
    storage: CloneStorage = CloneStorage()


@dataclasses.dataclass(frozen=True, slots=True)
class VMTemplateSpec:
    """The user's part of every VM. `spec` is KubeVirt's VMI spec, kept as given (a private deep copy):
    the builder adds the root disk to a copy of it and never interprets the rest."""

    spec: Mapping[str, Any]
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    root_disk_name: str = "rootdisk"


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceSpec:
    """The Service in front of the VMs. ClientIP affinity by default: in-memory sessions need the same VM."""

    type: ServiceType = "ClusterIP"
    port: int = 80
    target_port: int = 8080
    session_affinity: SessionAffinity = "ClientIP"
    session_affinity_timeout_seconds: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StickyCookieSpec:
    enabled: bool = True
    name: str = "WAS_STICKY"
    max_age_seconds: int = 0  # 0: a session cookie


@dataclasses.dataclass(frozen=True, slots=True)
class IngressSpec:
    enabled: bool = False
    host: str | None = None
    class_name: str | None = None
    path: str = "/"
    tls_secret_name: str | None = None
    sticky_cookie: StickyCookieSpec = StickyCookieSpec()
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class SecretKeyRef:
    """A key of a Secret in the WebAppScaling's namespace."""

    name: str
    key: str = "token"


@dataclasses.dataclass(frozen=True, slots=True)
class WorkloadSpec:
    golden_image: GoldenImageSpec
    vm_template: VMTemplateSpec
    service: ServiceSpec = ServiceSpec()
    ingress: IngressSpec = IngressSpec()
    drain_token: SecretKeyRef | None = None  # the bearer token of the agents' /drain endpoint


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    scaling: ScalingSpec
    workload: WorkloadSpec


@dataclasses.dataclass(frozen=True, slots=True)
class WebAppScaling:
    """One WebAppScaling as the operator works with it: its identity, its parsed spec, and the status as
    last written (read only to keep condition transition times and the last scale time)."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: Spec
    status: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class InvalidWebAppScaling:
    """A WebAppScaling whose spec the operator cannot act on: `error` says which field and why, and the
    operator reports it in its conditions instead of acting."""

    name: str
    namespace: str
    uid: str
    generation: int
    error: str
    status: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class SpecError(ValueError):
    """A spec the operator cannot act on; the message starts with the field's path."""


def parse(body: Mapping[str, Any]) -> WebAppScaling | InvalidWebAppScaling:
    """A WebAppScaling as the API returns it (or as kopf hands it over), parsed. Never raises for a bad
    spec: the error is part of the result, so the round can report it."""
    try:
        return parse_valid(body)
    except SpecError as problem:
        return InvalidWebAppScaling(**_identity(body), error=str(problem))


def parse_valid(body: Mapping[str, Any]) -> WebAppScaling:
    """Like `parse`, but a bad spec raises `SpecError`."""
    identity = _identity(body)
    raw = _Reader(body.get("spec") or {}, "spec")
    spec = Spec(scaling=_parse_spec(raw), workload=_parse_workload(raw, identity["namespace"]))
    return WebAppScaling(**identity, spec=spec)


def _identity(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a valid and an invalid WebAppScaling share: who it is, and its last written status."""
    meta = body.get("metadata") or {}
    return {
        "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or ""),
        "uid": str(meta.get("uid") or ""),
        "generation": int(meta.get("generation") or 0),
        "status": copy.deepcopy(dict(body.get("status") or {})),
    }


# ---------------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------------


class _Reader:
    """A view on one mapping of the spec that knows its path, so every error names its field."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise SpecError(f"{path}: must be an object, got {type(data).__name__}")
        self.data = data
        self.path = path

    def sub(self, key: str) -> _Reader:
        value = self.data.get(key)
        return _Reader({} if value is None else value, f"{self.path}.{key}")

    def field(self, key: str) -> str:
        return f"{self.path}.{key}"

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise SpecError(f"{self.field(key)}: must be true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int, *, minimum: int | None = None) -> int:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{self.field(key)}: must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise SpecError(f"{self.field(key)}: must be at least {minimum}, got {value}")
        return value

    def number(self, key: str, default: float, *, low: float, high: float = math.inf, open_low: bool) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SpecError(f"{self.field(key)}: must be a finite number, got {value!r}")
        if (value <= low if open_low else value < low) or value > high:
            bounds = f"> {low:g}" if open_low else f">= {low:g}"
            if math.isfinite(high):
                bounds += f" and <= {high:g}"
            raise SpecError(f"{self.field(key)}: must be {bounds}, got {value}")
        return float(value)

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if value not in allowed:
            raise SpecError(f"{self.field(key)}: must be one of {', '.join(allowed)}, got {value!r}")
        return cast(str, value)

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise SpecError(f"{self.field(key)}: must be a string, got {value!r}")
        return value

    def required_text(self, key: str) -> str:
        value = self.optional_text(key)
        if value is None:
            raise SpecError(f"{self.field(key)}: is required")
        return value

    def string_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise SpecError(f"{self.field(key)}: must map strings to strings, got {value!r}")
        return dict(value)

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise SpecError(f"{self.field(key)}: must be a non-empty string, got {value!r}")
        return value


def _parse_spec(r: _Reader) -> ScalingSpec:
    replicas = _parse_replicas(r.sub("replicas"))
    return ScalingSpec(
        paused=r.flag("paused", False),
        mode=cast(Mode, r.choice("mode", "Sessions", ("Sessions", "External"))),
        replicas=replicas,
        sessions=_parse_sessions(r.sub("sessions")),
        behavior=_parse_behavior(r.sub("behavior")),
        scale_in=_parse_scale_in(r.sub("scaleIn")),
        warm_pool=WarmPoolSpec(size=r.sub("warmPool").integer("size", WarmPoolSpec().size, minimum=0)),
        prediction=_parse_prediction(r.sub("prediction")),
    )


def _parse_replicas(r: _Reader) -> ReplicasSpec:
    d = ReplicasSpec()
    low = r.integer("min", d.min, minimum=0)
    high = r.integer("max", d.max, minimum=1)
    if high < low:
        raise SpecError(f"{r.field('max')}: must be >= {r.field('min')} ({low}), got {high}")
    desired = r.data.get("desired")
    if desired is not None:
        desired = r.integer("desired", 0, minimum=0)
    return ReplicasSpec(min=low, max=high, desired=desired)


def _parse_sessions(r: _Reader) -> SessionsSpec:
    d = SessionsSpec()
    a = r.sub("agent")
    m = r.sub("movingAverage")
    interval = r.integer("scrapeIntervalSeconds", d.scrape_interval_seconds, minimum=1)
    timeout = r.integer("scrapeTimeoutSeconds", d.scrape_timeout_seconds, minimum=1)
    if timeout > interval:
        raise SpecError(
            f"{r.field('scrapeTimeoutSeconds')}: must be <= scrapeIntervalSeconds ({interval}), got {timeout}"
        )
    return SessionsSpec(
        target_per_vm=r.number("targetPerVM", d.target_per_vm, low=0.0, open_low=True),
        agent=AgentSpec(
            port=_port(a, "port", d.agent.port),
            path=a.text("path", d.agent.path),
            metric=a.text("metric", d.agent.metric),
            drain_path=a.text("drainPath", d.agent.drain_path),
        ),
        scrape_interval_seconds=interval,
        scrape_timeout_seconds=timeout,
        moving_average=MovingAverageSpec(
            kind=cast(MovingAverageKind, m.choice("kind", d.moving_average.kind, ("Simple", "Exponential"))),
            window_seconds=m.integer("windowSeconds", d.moving_average.window_seconds, minimum=0),
        ),
    )


def _port(r: _Reader, key: str, default: int) -> int:
    port = r.integer(key, default, minimum=1)
    if port > 65535:
        raise SpecError(f"{r.field(key)}: must be <= 65535, got {port}")
    return port


def _parse_behavior(r: _Reader) -> BehaviorSpec:
    return BehaviorSpec(
        tolerance=r.number("tolerance", BehaviorSpec().tolerance, low=0.0, high=1.0, open_low=False),
        scale_up=_parse_rules(r.sub("scaleUp"), HPA_SCALE_UP),
        scale_down=_parse_rules(r.sub("scaleDown"), SCALE_DOWN_AFTER_DRAIN),
    )


def _parse_rules(r: _Reader, default: ScalingRules) -> ScalingRules:
    raw = r.data.get("policies")
    if raw is None:
        policies = default.policies
    else:
        if not isinstance(raw, list):
            raise SpecError(f"{r.field('policies')}: must be a list, got {type(raw).__name__}")
        policies = tuple(_parse_policy(_Reader(p, f"{r.field('policies')}[{i}]")) for i, p in enumerate(raw))
    select = cast(SelectPolicy, r.choice("selectPolicy", default.select_policy, ("Max", "Min", "Disabled")))
    if not policies and select != "Disabled":
        raise SpecError(f"{r.field('policies')}: must not be empty unless selectPolicy is Disabled")
    window = r.integer("stabilizationWindowSeconds", default.stabilization_window_seconds, minimum=0)
    if window > 3600:  # HPA's validation limit
        raise SpecError(f"{r.field('stabilizationWindowSeconds')}: must be <= 3600, got {window}")
    return ScalingRules(stabilization_window_seconds=window, select_policy=select, policies=policies)


def _parse_policy(r: _Reader) -> ScalingPolicy:
    kind = cast(PolicyType, r.choice("type", "", ("Percent", "VMs")))
    if not kind:
        raise SpecError(f"{r.field('type')}: is required (Percent or VMs)")
    if "value" not in r.data or "periodSeconds" not in r.data:
        raise SpecError(f"{r.path}: value and periodSeconds are required")
    period = r.integer("periodSeconds", 0, minimum=1)
    if period > 1800:  # HPA's validation limit
        raise SpecError(f"{r.field('periodSeconds')}: must be <= 1800, got {period}")
    return ScalingPolicy(type=kind, value=r.integer("value", 0, minimum=1), period_seconds=period)


def _parse_scale_in(r: _Reader) -> ScaleInSpec:
    d = ScaleInSpec()
    dr = r.sub("drain")
    return ScaleInSpec(
        order=cast(ScaleInOrder, r.choice("order", d.order, ("FewestSessions", "Oldest", "Newest"))),
        drain=DrainSpec(
            enabled=dr.flag("enabled", d.drain.enabled),
            timeout_seconds=dr.integer("timeoutSeconds", d.drain.timeout_seconds, minimum=0),
        ),
    )


def _parse_prediction(r: _Reader) -> PredictionSpec:
    d = PredictionSpec()
    return PredictionSpec(
        enabled=r.flag("enabled", d.enabled),
        method=cast(PredictionMethod, r.choice("method", d.method, ("HoltDamped",))),
        horizon_seconds=r.integer("horizonSeconds", d.horizon_seconds, minimum=0),
        level_smoothing=r.number("levelSmoothing", d.level_smoothing, low=0.0, high=1.0, open_low=True),
        trend_smoothing=r.number("trendSmoothing", d.trend_smoothing, low=0.0, high=1.0, open_low=True),
        damping=r.number("damping", d.damping, low=0.0, high=1.0, open_low=True),
    )


def _parse_workload(r: _Reader, namespace: str) -> WorkloadSpec:
    token = r.sub("sessions").sub("agent").data.get("drainTokenSecretRef")
    return WorkloadSpec(
        golden_image=_parse_golden_image(r.sub("goldenImage"), namespace),
        vm_template=_parse_vm_template(r.sub("vmTemplate")),
        service=_parse_service(r.sub("service")),
        ingress=_parse_ingress(r.sub("ingress")),
        drain_token=None
        if token is None
        else _parse_secret_ref(_Reader(token, r.field("sessions.agent.drainTokenSecretRef"))),
    )


def _parse_golden_image(r: _Reader, namespace: str) -> GoldenImageSpec:
    d = CloneStorage()
    s = r.sub("storage")
    size = s.data.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, str | int)):
        raise SpecError(f"{s.field('size')}: must be a quantity such as 10Gi, got {size!r}")
    modes = s.data.get("accessModes")
    if modes is not None and (not isinstance(modes, list) or not all(isinstance(m, str) for m in modes)):
        raise SpecError(f"{s.field('accessModes')}: must be a list of access modes, got {modes!r}")
    return GoldenImageSpec(
        name=r.required_text("name"),
        namespace=r.optional_text("namespace") or namespace,
        kind=cast(
            GoldenImageKind, r.choice("kind", "DataVolume", ("DataVolume", "PersistentVolumeClaim", "DataSource"))
        ),
        storage=CloneStorage(
            size=None if size is None else str(size),
            storage_class_name=s.optional_text("storageClassName") or d.storage_class_name,
            access_modes=tuple(modes or d.access_modes),
        ),
    )


def _parse_vm_template(r: _Reader) -> VMTemplateSpec:
    spec = r.data.get("spec")
    if not isinstance(spec, Mapping):
        raise SpecError(f"{r.field('spec')}: is required (the VMI spec: domain, networks, volumes)")
    meta = r.sub("metadata")
    return VMTemplateSpec(
        spec=copy.deepcopy(dict(spec)),
        labels=meta.string_map("labels"),
        annotations=meta.string_map("annotations"),
        root_disk_name=r.text("rootDiskName", "rootdisk"),
    )


def _parse_service(r: _Reader) -> ServiceSpec:
    d = ServiceSpec()
    affinity = cast(SessionAffinity, r.choice("sessionAffinity", d.session_affinity, ("None", "ClientIP")))
    timeout = r.data.get("sessionAffinityTimeoutSeconds")
    if timeout is not None:
        timeout = r.integer("sessionAffinityTimeoutSeconds", 0, minimum=1)
        if affinity != "ClientIP":
            raise SpecError(f"{r.field('sessionAffinityTimeoutSeconds')}: needs sessionAffinity ClientIP")
    return ServiceSpec(
        type=cast(ServiceType, r.choice("type", d.type, ("ClusterIP", "NodePort", "LoadBalancer"))),
        port=_port(r, "port", d.port),
        target_port=_port(r, "targetPort", d.target_port),
        session_affinity=affinity,
        session_affinity_timeout_seconds=timeout,
    )


def _parse_ingress(r: _Reader) -> IngressSpec:
    d = IngressSpec()
    c = r.sub("stickyCookie")
    tls = r.data.get("tls")
    host = r.optional_text("host")
    tls_secret = None if tls is None else _Reader(tls, r.field("tls")).required_text("secretName")
    if tls_secret is not None and host is None:
        raise SpecError(f"{r.field('tls')}: needs {r.field('host')}")
    return IngressSpec(
        enabled=r.flag("enabled", d.enabled),
        host=host,
        class_name=r.optional_text("className"),
        path=r.text("path", d.path),
        tls_secret_name=tls_secret,
        sticky_cookie=StickyCookieSpec(
            enabled=c.flag("enabled", d.sticky_cookie.enabled),
            name=c.text("name", d.sticky_cookie.name),
            max_age_seconds=c.integer("maxAgeSeconds", d.sticky_cookie.max_age_seconds, minimum=0),
        ),
        annotations=r.string_map("annotations"),
    )


def _parse_secret_ref(r: _Reader) -> SecretKeyRef:
    return SecretKeyRef(name=r.required_text("name"), key=r.text("key", "token"))
