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
import re
from collections.abc import Callable, Mapping
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
DrainMode = Literal["Readiness", "RefuseNewSessions"]
AgentSource = Literal["proxy", "tomcat", "connections", "push"]

DRAIN_MODES: tuple[DrainMode, ...] = ("Readiness", "RefuseNewSessions")
AGENT_SOURCES: tuple[AgentSource, ...] = ("proxy", "tomcat", "connections", "push")
# The drain modes each agent source can carry out (the agent's contract, docs/session-agent.md): refusing
# only *new* sessions needs a source in the request path that knows which requests carry a session it
# holds, and only the proxy is; the others can only drain by failing readiness.
SOURCE_DRAIN_MODES: Mapping[AgentSource, tuple[DrainMode, ...]] = {
    "proxy": DRAIN_MODES,
    "tomcat": ("Readiness",),
    "connections": ("Readiness",),
    "push": ("Readiness",),
}

# The messages of the CRD's CEL rules that this module checks too, so `webapp-scaler render` and the
# operator say exactly what admission says (tests/unit/test_admission.py compares them with the CRD).
DRAIN_MODE_NEEDS_PROXY = (
    "spec.scaleIn.drain.mode RefuseNewSessions (the default) needs spec.sessions.agent.source proxy: only the "
    "proxy source sees which requests carry a session it holds; with the tomcat, connections or push source "
    "set spec.scaleIn.drain.mode to Readiness"
)
ROUTE_NEEDS_PARENTS = "spec.route.parentRefs must name at least one parent (a Gateway) for the HTTPRoute to attach to"
RETRY_ATTEMPTS_RANGE = (
    "spec.route.retry.attempts must be from 2 to 10: one retry can land on a second draining VM, and more "
    "than 10 only delay the error a user sees"
)
PERMANENT_COOKIE_NEEDS_TIMEOUT = (
    "spec.route.sessionPersistence.absoluteTimeout is required when lifetimeType is Permanent: it is the "
    "cookie's lifetime"
)


# ---------------------------------------------------------------------------------------------------------
# The formats of every string that ends up in a Kubernetes name, label, annotation, header or URL
# ---------------------------------------------------------------------------------------------------------
# Each is a CEL rule of the CRD with this message (admission refuses it, `webapp_scaler.admission` mirrors
# it) and a check of `parse_valid` (so an object stored before the rule existed is InvalidSpec, and nothing
# is created from it, instead of an apply the apiserver refuses every round). The regular expressions are
# the CRD's, character for character: RE2 and Python read them alike (no backslash, anchored, full match).
DNS_LABEL = "^[a-z0-9]+(-+[a-z0-9]+)*$"  # with maxLength 63 (or the 45 of metadata.name)
DNS_SUBDOMAIN = "^[a-z0-9]+(-+[a-z0-9]+)*([.][a-z0-9]+(-+[a-z0-9]+)*)*$"  # with maxLength 253
HOSTNAME = "^([*][.])?([a-z0-9]|[a-z0-9][-a-z0-9]{0,61}[a-z0-9])([.][a-z0-9]|[.][a-z0-9][-a-z0-9]{0,61}[a-z0-9])*$"
NUMERIC_HOST = "^[0-9.]+$"  # an IPv4 address: a host name must not be one
QUALIFIED_NAME = (  # an optional DNS-subdomain prefix and '/', then a name of at most 63 characters
    "^([a-z0-9]+(-+[a-z0-9]+)*([.][a-z0-9]+(-+[a-z0-9]+)*)*/)?([A-Za-z0-9]|[A-Za-z0-9][-A-Za-z0-9_.]{0,61}[A-Za-z0-9])$"
)
LABEL_VALUE = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"  # with maxLength 63
URL_PATH = "^/([-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$"
SECRET_KEY = "^[-._a-zA-Z0-9]+$"  # a key of a Secret's data, with maxLength 253
# the labels the operator sets on every VM's template and selects the VMs' pods by (kubevirt.io is
# KubeVirt's virt-launcher label); a template label of these names would be overwritten or break the watch
OPERATOR_LABELS = ("app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "kubevirt.io")

_LABEL = "a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit)"
_SUBDOMAIN = (
    "a DNS subdomain (lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with "
    "a letter or digit)"
)
_HOST = (
    "a DNS name, not an IP address: dot-separated labels of at most 63 lowercase letters, digits and '-', each "
    "starting and ending with a letter or digit, '*.' allowed in front"
)
_PATH = (
    "a URL path: '/' then letters, digits, %XX escapes and -._~!$&'()*+,;=:@/ (no spaces or control "
    "characters), without '//', '/./', '/../' or %2F and not ending in '/.' or '/..'"
)
_QUALIFIED = (
    "qualified names: an optional DNS subdomain prefix of at most 253 characters and '/', then at most 63 "
    "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
)

NAME_NOT_DNS_LABEL = (
    f"metadata.name must be {_LABEL}: it names the Service, the Ingress, the HTTPRoute and the VMs, and a "
    "dot is not allowed there"
)
GOLDEN_IMAGE_NAME_FORMAT = f"spec.goldenImage.name must be {_SUBDOMAIN}: it names a DataVolume, PVC or DataSource"
GOLDEN_IMAGE_NAMESPACE_FORMAT = f"spec.goldenImage.namespace must be {_LABEL}: it is a namespace"
STORAGE_CLASS_FORMAT = f"spec.goldenImage.storage.storageClassName must be {_SUBDOMAIN}: it names a StorageClass"
TEMPLATE_LABEL_KEYS = f"spec.vmTemplate.metadata.labels keys must be {_QUALIFIED}"
TEMPLATE_LABEL_VALUES = (
    "spec.vmTemplate.metadata.labels values must be label values: at most 63 letters, digits, '-', '_' and '.', "
    "starting and ending with a letter or digit, or empty"
)
TEMPLATE_LABEL_OPERATORS = (
    "spec.vmTemplate.metadata.labels must not set app.kubernetes.io/managed-by, app.kubernetes.io/part-of or "
    "kubevirt.io: the operator sets them on every VM and finds the VMs' pods by them"
)
TEMPLATE_ANNOTATION_KEYS = f"spec.vmTemplate.metadata.annotations keys must be {_QUALIFIED}"
VOLUME_NAME_FORMAT = f"spec.vmTemplate.spec.volumes[].name must be {_LABEL}: KubeVirt names a disk after it"
ROOT_DISK_NAME_FORMAT = f"spec.vmTemplate.rootDiskName must be {_LABEL}: it names a disk, a volume and a DataVolume"
AGENT_PATH_FORMAT = f"spec.sessions.agent.path must be {_PATH}"
AGENT_DRAIN_PATH_FORMAT = f"spec.sessions.agent.drainPath must be {_PATH}"
AGENT_PATHS_DIFFER = (
    "spec.sessions.agent.path and spec.sessions.agent.drainPath must differ: the agent serves its metrics and "
    "its drain endpoint on one listener"
)
TARGET_PORT_IS_AGENT_PORT = (
    "spec.service.targetPort must differ from spec.sessions.agent.port: the web application and the session "
    "agent's metrics listener cannot share a port on the VM's address"
)
DRAIN_SECRET_NAME_FORMAT = f"spec.sessions.agent.drainTokenSecretRef.name must be {_SUBDOMAIN}: it names a Secret"
DRAIN_SECRET_KEY_FORMAT = (
    "spec.sessions.agent.drainTokenSecretRef.key must be a Secret data key: letters, digits, '-', '_' and '.'"
)
INGRESS_HOST_FORMAT = f"spec.ingress.host must be {_HOST}"
INGRESS_CLASS_FORMAT = f"spec.ingress.className must be {_SUBDOMAIN}: it names an IngressClass"
INGRESS_TLS_SECRET_FORMAT = f"spec.ingress.tls.secretName must be {_SUBDOMAIN}: it names a Secret"
INGRESS_PATH_FORMAT = f"spec.ingress.path must be {_PATH}"
INGRESS_ANNOTATION_KEYS = f"spec.ingress.annotations keys must be {_QUALIFIED}"
ROUTE_HOSTNAMES_FORMAT = f"spec.route.hostnames must each be {_HOST}"
ROUTE_PATH_FORMAT = f"spec.route.path must be {_PATH}"
ROUTE_PARENT_NAME_FORMAT = f"spec.route.parentRefs[].name must be {_SUBDOMAIN}: it names a Gateway or another parent"
ROUTE_ANNOTATION_KEYS = f"spec.route.annotations keys must be {_QUALIFIED}"
ROUTE_LABEL_KEYS = f"spec.route.labels keys must be {_QUALIFIED}"
ROUTE_LABEL_VALUES = (
    "spec.route.labels values must be label values: at most 63 letters, digits, '-', '_' and '.', starting and "
    "ending with a letter or digit, or empty"
)


def _matches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda value: compiled.fullmatch(value) is not None


_label, _subdomain, _label_value = _matches(DNS_LABEL), _matches(DNS_SUBDOMAIN), _matches(LABEL_VALUE)
_hostname, _numeric, _secret_key = _matches(HOSTNAME), _matches(NUMERIC_HOST), _matches(SECRET_KEY)
_qualified, _url_path = _matches(QUALIFIED_NAME), _matches(URL_PATH)


# The lengths are the CRD's maxLength (the apiserver says "Too long" there, before any CEL rule runs).
def is_dns_label(value: str) -> bool:
    return len(value) <= 63 and _label(value)


def is_dns_subdomain(value: str) -> bool:
    return len(value) <= 253 and _subdomain(value)


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and _label_value(value)


def is_secret_key(value: str) -> bool:
    return len(value) <= 253 and _secret_key(value)


def is_hostname(value: str) -> bool:
    return len(value) <= 253 and _hostname(value) and not _numeric(value)


def is_qualified_name(value: str) -> bool:
    return _qualified(value) and value.find("/") <= 253


def is_url_path(value: str) -> bool:
    lowered = value.lower()
    return (
        len(value) <= 1024
        and _url_path(value)
        and not any(part in lowered for part in ("//", "/./", "/../", "%2f"))
        and not value.endswith(("/.", "/.."))
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Format:
    """One string field's format. `path` is dotted from the object's root; `[]` steps into each item of a
    list, a trailing `{}` checks each key of a map and `{=}` each value. A value that is missing or not a
    string is the schema's business, not this check's."""

    path: str
    holds: Callable[[str], bool]
    message: str

    def values(self, body: Mapping[str, Any]) -> list[str]:
        nodes: list[Any] = [body]
        for step in self.path.split("."):
            if step == "{}":
                nodes = [k for n in nodes if isinstance(n, Mapping) for k in n]
            elif step == "{=}":
                nodes = [v for n in nodes if isinstance(n, Mapping) for v in n.values()]
            elif step.endswith("[]"):
                lists = [n.get(step[:-2]) for n in nodes if isinstance(n, Mapping)]
                nodes = [item for items in lists if isinstance(items, list) for item in items]
            else:
                nodes = [n.get(step) for n in nodes if isinstance(n, Mapping)]
        return [n for n in nodes if isinstance(n, str)]

    def broken(self, body: Mapping[str, Any]) -> bool:
        return not all(self.holds(value) for value in self.values(body))


FORMATS: tuple[Format, ...] = (
    Format("metadata.name", is_dns_label, NAME_NOT_DNS_LABEL),
    Format("spec.goldenImage.name", is_dns_subdomain, GOLDEN_IMAGE_NAME_FORMAT),
    Format("spec.goldenImage.namespace", is_dns_label, GOLDEN_IMAGE_NAMESPACE_FORMAT),
    Format("spec.goldenImage.storage.storageClassName", is_dns_subdomain, STORAGE_CLASS_FORMAT),
    Format("spec.vmTemplate.metadata.labels.{}", is_qualified_name, TEMPLATE_LABEL_KEYS),
    Format("spec.vmTemplate.metadata.labels.{=}", is_label_value, TEMPLATE_LABEL_VALUES),
    Format("spec.vmTemplate.metadata.labels.{}", lambda key: key not in OPERATOR_LABELS, TEMPLATE_LABEL_OPERATORS),
    Format("spec.vmTemplate.metadata.annotations.{}", is_qualified_name, TEMPLATE_ANNOTATION_KEYS),
    Format("spec.vmTemplate.spec.volumes[].name", is_dns_label, VOLUME_NAME_FORMAT),
    Format("spec.vmTemplate.rootDiskName", is_dns_label, ROOT_DISK_NAME_FORMAT),
    Format("spec.sessions.agent.path", is_url_path, AGENT_PATH_FORMAT),
    Format("spec.sessions.agent.drainPath", is_url_path, AGENT_DRAIN_PATH_FORMAT),
    Format("spec.sessions.agent.drainTokenSecretRef.name", is_dns_subdomain, DRAIN_SECRET_NAME_FORMAT),
    Format("spec.sessions.agent.drainTokenSecretRef.key", is_secret_key, DRAIN_SECRET_KEY_FORMAT),
    Format("spec.ingress.host", is_hostname, INGRESS_HOST_FORMAT),
    Format("spec.ingress.className", is_dns_subdomain, INGRESS_CLASS_FORMAT),
    Format("spec.ingress.tls.secretName", is_dns_subdomain, INGRESS_TLS_SECRET_FORMAT),
    Format("spec.ingress.path", is_url_path, INGRESS_PATH_FORMAT),
    Format("spec.ingress.annotations.{}", is_qualified_name, INGRESS_ANNOTATION_KEYS),
    Format("spec.route.hostnames[]", is_hostname, ROUTE_HOSTNAMES_FORMAT),
    Format("spec.route.path", is_url_path, ROUTE_PATH_FORMAT),
    Format("spec.route.parentRefs[].name", is_dns_subdomain, ROUTE_PARENT_NAME_FORMAT),
    Format("spec.route.annotations.{}", is_qualified_name, ROUTE_ANNOTATION_KEYS),
    Format("spec.route.labels.{}", is_qualified_name, ROUTE_LABEL_KEYS),
    Format("spec.route.labels.{=}", is_label_value, ROUTE_LABEL_VALUES),
)


def format_errors(body: Mapping[str, Any]) -> list[str]:
    """The messages of every format in `FORMATS` this object breaks, in the CRD's words."""
    return [f.message for f in FORMATS if f.broken(body)]


@dataclasses.dataclass(frozen=True, slots=True)
class AgentSpec:
    """Where each VM's session agent answers; the engine never calls it, the operator does."""

    port: int = 9100
    path: str = "/metrics"
    metric: str = "webapp_active_sessions"
    drain_path: str = "/drain"
    source: AgentSource = "proxy"  # which source the agents run: it decides the drain modes they can do


@dataclasses.dataclass(frozen=True, slots=True)
class MovingAverageSpec:
    """The smoothing of the session indicator: the method's core, so the user picks kind and window."""

    kind: MovingAverageKind = "Simple"
    window_seconds: int = 120


@dataclasses.dataclass(frozen=True, slots=True)
class FallbackSpec:
    """What the engine does while no Ready VM gives a valid session count (KEDA's `fallback`): it holds the
    count, and with `replicas` set, once more than `failure_threshold` rounds in a row failed, it scales
    towards `replicas` (clamped to spec.replicas, at spec.behavior's pace). Never a scale-in meanwhile."""

    failure_threshold: int = 3
    replicas: int | None = None  # None: hold the count for as long as the readings fail


@dataclasses.dataclass(frozen=True, slots=True)
class SessionsSpec:
    target_per_vm: float = 80.0
    agent: AgentSpec = AgentSpec()
    scrape_interval_seconds: int = 15
    scrape_timeout_seconds: int = 5
    moving_average: MovingAverageSpec = MovingAverageSpec()
    fallback: FallbackSpec = FallbackSpec()


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
    # RefuseNewSessions by default: the VM stays Ready and its agent answers requests without a session it
    # holds with 503, so it works behind load balancers that drop not-ready endpoints at once (which would
    # cut a Readiness drain's users off) as long as they retry a 503 elsewhere; docs/load-balancers.md
    # has the measurements.
    mode: DrainMode = "RefuseNewSessions"

    @property
    def refuses_new_sessions(self) -> bool:
        """Whether a drain keeps the VM Ready and relies on the load balancer retrying its 503s."""
        return self.enabled and self.mode == "RefuseNewSessions"


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
IngressController = Literal["Any", "IngressNginx", "Traefik", "HAProxyIngress", "HAProxy"]
CookieLifetime = Literal["Session", "Permanent"]

INGRESS_CONTROLLERS: tuple[IngressController, ...] = ("Any", "IngressNginx", "Traefik", "HAProxyIngress", "HAProxy")
ROOT_DISK_NAME = "rootdisk"  # the disk and volume of the cloned golden image
DEFAULT_PATH = "/"  # the URL path prefix of the Ingress and the HTTPRoute
STICKY_COOKIE_NAME = "WAS_STICKY"  # the Ingress's sticky cookie and the HTTPRoute's session cookie
RETRY_ATTEMPTS = 2  # retries of a refused request: the first may reach a second draining VM


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
    root_disk_name: str = ROOT_DISK_NAME


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
    name: str = STICKY_COOKIE_NAME
    max_age_seconds: int = 0  # 0: a session cookie


@dataclasses.dataclass(frozen=True, slots=True)
class IngressSpec:
    enabled: bool = False
    host: str | None = None
    class_name: str | None = None
    path: str = DEFAULT_PATH
    tls_secret_name: str | None = None
    sticky_cookie: StickyCookieSpec = StickyCookieSpec()
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # whose annotations to write; Any writes those of every controller docs/operator.md lists (each
    # ignores the others'), so nothing silently assumes one controller
    controller: IngressController = "Any"


@dataclasses.dataclass(frozen=True, slots=True)
class ParentRef:
    """A Gateway API ParentReference, as given: unset fields take Gateway API's defaults (a Gateway in
    the route's namespace)."""

    name: str
    namespace: str | None = None
    section_name: str | None = None
    port: int | None = None
    group: str | None = None
    kind: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RouteRetrySpec:
    """Gateway API's HTTPRouteRetry. A refused request (503) was not processed, so retrying it is safe."""

    attempts: int = RETRY_ATTEMPTS
    codes: tuple[int, ...] = (503,)
    backoff: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionPersistenceSpec:
    """Cookie session persistence on the route (Gateway API's experimental `sessionPersistence`)."""

    enabled: bool = False
    cookie_name: str = STICKY_COOKIE_NAME
    lifetime_type: CookieLifetime = "Session"
    absolute_timeout: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RouteSpec:
    """The HTTPRoute in front of the Service. `retry` None means not given: the route then retries only
    when drains refuse new sessions (with `RouteRetrySpec()`)."""

    parent_refs: tuple[ParentRef, ...]
    hostnames: tuple[str, ...] = ()
    path: str = DEFAULT_PATH
    retry: RouteRetrySpec | None = None
    session_persistence: SessionPersistenceSpec = SessionPersistenceSpec()
    filters: tuple[Mapping[str, Any], ...] = ()  # passed through: controller-specific HTTPRouteFilters
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


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
    route: RouteSpec | None = None  # spec.route: an HTTPRoute (Gateway API) when given


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
    problems = format_errors(body)  # after the types: a format is only checked on a string
    if problems:
        raise SpecError("; ".join(problems))
    if spec.workload.service.target_port == spec.scaling.sessions.agent.port:
        raise SpecError(TARGET_PORT_IS_AGENT_PORT)
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
    sessions = _parse_sessions(r.sub("sessions"))
    scale_in = _parse_scale_in(r.sub("scaleIn"))
    if scale_in.drain.mode not in SOURCE_DRAIN_MODES[sessions.agent.source]:
        raise SpecError(DRAIN_MODE_NEEDS_PROXY)
    return ScalingSpec(
        paused=r.flag("paused", False),
        mode=cast(Mode, r.choice("mode", "Sessions", ("Sessions", "External"))),
        replicas=replicas,
        sessions=sessions,
        behavior=_parse_behavior(r.sub("behavior")),
        scale_in=scale_in,
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
    agent = AgentSpec(
        port=_port(a, "port", d.agent.port),
        path=a.text("path", d.agent.path),
        metric=a.text("metric", d.agent.metric),
        drain_path=a.text("drainPath", d.agent.drain_path),
        source=cast(AgentSource, a.choice("source", d.agent.source, AGENT_SOURCES)),
    )
    if agent.path == agent.drain_path:
        raise SpecError(AGENT_PATHS_DIFFER)
    return SessionsSpec(
        target_per_vm=r.number("targetPerVM", d.target_per_vm, low=0.0, open_low=True),
        agent=agent,
        scrape_interval_seconds=interval,
        scrape_timeout_seconds=timeout,
        moving_average=MovingAverageSpec(
            kind=cast(MovingAverageKind, m.choice("kind", d.moving_average.kind, ("Simple", "Exponential"))),
            window_seconds=m.integer("windowSeconds", d.moving_average.window_seconds, minimum=0),
        ),
        fallback=_parse_fallback(r.sub("fallback")),
    )


def _parse_fallback(r: _Reader) -> FallbackSpec:
    d = FallbackSpec()
    threshold = r.integer("failureThreshold", d.failure_threshold, minimum=1)
    if threshold > 1000:
        raise SpecError(f"{r.field('failureThreshold')}: must be <= 1000, got {threshold}")
    replicas = None if r.data.get("replicas") is None else r.integer("replicas", 0, minimum=0)
    return FallbackSpec(failure_threshold=threshold, replicas=replicas)


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
            mode=cast(DrainMode, dr.choice("mode", d.drain.mode, DRAIN_MODES)),
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
        route=None if r.data.get("route") is None else _parse_route(r.sub("route")),
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
        root_disk_name=r.text("rootDiskName", ROOT_DISK_NAME),
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
        controller=cast(IngressController, r.choice("controller", d.controller, INGRESS_CONTROLLERS)),
    )


# Gateway API's own formats (gateway.networking.k8s.io v1.7.0, HTTPRoute CRD): a value the HTTPRoute CRD
# would reject is rejected here already, naming our field.
_GATEWAY_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")


def _parse_route(r: _Reader) -> RouteSpec:
    parents = r.data.get("parentRefs")
    if not parents:
        raise SpecError(ROUTE_NEEDS_PARENTS)
    if not isinstance(parents, list):
        raise SpecError(f"{r.field('parentRefs')}: must be a list, got {type(parents).__name__}")
    hostnames = r.data.get("hostnames") or []
    if not isinstance(hostnames, list) or not all(isinstance(h, str) and _HOSTNAME.match(h) for h in hostnames):
        raise SpecError(
            f"{r.field('hostnames')}: must be a list of DNS names (a leading *. allowed), got {hostnames!r}"
        )
    path = r.text("path", DEFAULT_PATH)
    if not path.startswith("/"):
        raise SpecError(f"{r.field('path')}: must start with /, got {path!r}")
    filters = r.data.get("filters") or []
    if not isinstance(filters, list) or not all(
        isinstance(f, Mapping) and isinstance(f.get("type"), str) for f in filters
    ):
        raise SpecError(f"{r.field('filters')}: must be a list of HTTPRouteFilter objects, each with a type")
    return RouteSpec(
        parent_refs=tuple(_parse_parent(_Reader(p, f"{r.field('parentRefs')}[{i}]")) for i, p in enumerate(parents)),
        hostnames=tuple(hostnames),
        path=path,
        retry=None if r.data.get("retry") is None else _parse_retry(r.sub("retry")),
        session_persistence=_parse_session_persistence(r.sub("sessionPersistence")),
        filters=tuple(copy.deepcopy(dict(f)) for f in filters),
        annotations=r.string_map("annotations"),
        labels=r.string_map("labels"),
    )


def _parse_parent(r: _Reader) -> ParentRef:
    port = r.data.get("port")
    return ParentRef(
        name=r.required_text("name"),
        namespace=r.optional_text("namespace"),
        section_name=r.optional_text("sectionName"),
        port=None if port is None else _port(r, "port", 0),
        group="" if r.data.get("group") == "" else r.optional_text("group"),  # "": the core group
        kind=r.optional_text("kind"),
    )


def _parse_retry(r: _Reader) -> RouteRetrySpec:
    d = RouteRetrySpec()
    attempts = r.integer("attempts", d.attempts)
    if not 2 <= attempts <= 10:
        raise SpecError(RETRY_ATTEMPTS_RANGE)
    codes = r.data.get("codes")
    if codes is None:
        codes = list(d.codes)
    if not isinstance(codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 400 <= c <= 599 for c in codes
    ):
        raise SpecError(f"{r.field('codes')}: must be a list of HTTP status codes from 400 to 599, got {codes!r}")
    return RouteRetrySpec(attempts=attempts, codes=tuple(codes), backoff=_duration(r, "backoff"))


def _parse_session_persistence(r: _Reader) -> SessionPersistenceSpec:
    d = SessionPersistenceSpec()
    name = r.text("cookieName", d.cookie_name)
    if len(name) > 256 or not _COOKIE_NAME.match(name):
        raise SpecError(f"{r.field('cookieName')}: must be a cookie name (RFC 6265 token), got {name!r}")
    lifetime = cast(CookieLifetime, r.choice("lifetimeType", d.lifetime_type, ("Session", "Permanent")))
    timeout = _duration(r, "absoluteTimeout")
    if lifetime == "Permanent" and timeout is None:
        raise SpecError(PERMANENT_COOKIE_NEEDS_TIMEOUT)
    return SessionPersistenceSpec(
        enabled=r.flag("enabled", d.enabled), cookie_name=name, lifetime_type=lifetime, absolute_timeout=timeout
    )


def _duration(r: _Reader, key: str) -> str | None:
    value = r.optional_text(key)
    if value is not None and not _GATEWAY_DURATION.match(value):
        raise SpecError(f"{r.field(key)}: must be a Gateway API duration such as 500ms, 10s or 1h30m, got {value!r}")
    return value


def _parse_secret_ref(r: _Reader) -> SecretKeyRef:
    return SecretKeyRef(name=r.required_text("name"), key=r.text("key", "token"))
