"""The scaling half of a WebAppScaling spec, and the data the engine reads and returns.

Every default of the scaling API lives here and only here: the CRD schema, the docs and the benchmark's
"default policy" are all checked against these dataclasses. Parsing is tolerant (a missing field takes its
default, because `kubectl apply` of a minimal manifest must work) but strict about impossible values: a
`ValueError` names the offending field with its camelCase path, so the operator can put it in a condition.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any, Literal, cast

# Used as the prediction horizon until the first VM of a WebAppScaling has been measured booting.
DEFAULT_BOOT_SECONDS = 90.0
# The same for starting a warm (pre-cloned, stopped) VM: the boot without the clone.
DEFAULT_WARM_START_SECONDS = 45.0

# ---------------------------------------------------------------------------------------------------------
# The spec
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
        """Parse the CR's `spec` (camelCase). Unknown fields are ignored: they belong to other parts."""
        return _parse_spec(_Reader(spec or {}, "spec"))


# ---------------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------------


class _Reader:
    """A view on one mapping of the spec that knows its path, so every error names its field."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: must be an object, got {type(data).__name__}")
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
            raise ValueError(f"{self.field(key)}: must be true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int, *, minimum: int | None = None) -> int:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{self.field(key)}: must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise ValueError(f"{self.field(key)}: must be at least {minimum}, got {value}")
        return value

    def number(self, key: str, default: float, *, low: float, high: float = math.inf, open_low: bool) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{self.field(key)}: must be a finite number, got {value!r}")
        if (value <= low if open_low else value < low) or value > high:
            bounds = f"> {low:g}" if open_low else f">= {low:g}"
            if math.isfinite(high):
                bounds += f" and <= {high:g}"
            raise ValueError(f"{self.field(key)}: must be {bounds}, got {value}")
        return float(value)

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if value not in allowed:
            raise ValueError(f"{self.field(key)}: must be one of {', '.join(allowed)}, got {value!r}")
        return cast(str, value)

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise ValueError(f"{self.field(key)}: must be a non-empty string, got {value!r}")
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
        raise ValueError(f"{r.field('max')}: must be >= {r.field('min')} ({low}), got {high}")
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
        raise ValueError(
            f"{r.field('scrapeTimeoutSeconds')}: must be <= scrapeIntervalSeconds ({interval}), got {timeout}"
        )
    return SessionsSpec(
        target_per_vm=r.number("targetPerVM", d.target_per_vm, low=0.0, open_low=True),
        agent=AgentSpec(
            port=_port(a),
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


def _port(r: _Reader) -> int:
    port = r.integer("port", AgentSpec().port, minimum=1)
    if port > 65535:
        raise ValueError(f"{r.field('port')}: must be <= 65535, got {port}")
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
            raise ValueError(f"{r.field('policies')}: must be a list, got {type(raw).__name__}")
        policies = tuple(_parse_policy(_Reader(p, f"{r.field('policies')}[{i}]")) for i, p in enumerate(raw))
    select = cast(SelectPolicy, r.choice("selectPolicy", default.select_policy, ("Max", "Min", "Disabled")))
    if not policies and select != "Disabled":
        raise ValueError(f"{r.field('policies')}: must not be empty unless selectPolicy is Disabled")
    window = r.integer("stabilizationWindowSeconds", default.stabilization_window_seconds, minimum=0)
    if window > 3600:  # HPA's validation limit
        raise ValueError(f"{r.field('stabilizationWindowSeconds')}: must be <= 3600, got {window}")
    return ScalingRules(stabilization_window_seconds=window, select_policy=select, policies=policies)


def _parse_policy(r: _Reader) -> ScalingPolicy:
    kind = cast(PolicyType, r.choice("type", "", ("Percent", "VMs")))
    if not kind:
        raise ValueError(f"{r.field('type')}: is required (Percent or VMs)")
    if "value" not in r.data or "periodSeconds" not in r.data:
        raise ValueError(f"{r.path}: value and periodSeconds are required")
    period = r.integer("periodSeconds", 0, minimum=1)
    if period > 1800:  # HPA's validation limit
        raise ValueError(f"{r.field('periodSeconds')}: must be <= 1800, got {period}")
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


# ---------------------------------------------------------------------------------------------------------
# What the controller observes, what the engine remembers, what it decides
# ---------------------------------------------------------------------------------------------------------


class VMPhase(enum.StrEnum):
    """A VM's life as the controller sees it (from the VM, its DataVolume and its VMI)."""

    CLONING = "Cloning"  # the root disk is being cloned from the golden image
    BOOTING = "Booting"  # disk ready, VMI starting, not ready yet
    READY = "Ready"  # VMI ready and in the load balancer
    DRAINING = "Draining"  # ready, but taken out of the load balancer for new sessions
    WARM = "Warm"  # warm pool: pre-cloned (or still cloning), stopped
    STARTING = "Starting"  # a warm VM that was started and is booting
    FAILED = "Failed"  # clone or boot failed


@dataclasses.dataclass(frozen=True, slots=True)
class VMState:
    """One VM as read from the cluster at `now`.

    `sessions` is the agent's last scraped count, or None when it could not be scraped (or only in
    phases where no agent runs). `started_at` is when a warm VM was started; `ready_at` when it became
    ready the last time. Times are float seconds on the controller's clock.
    """

    name: str
    phase: VMPhase
    created_at: float
    ready_at: float | None = None
    started_at: float | None = None
    draining_since: float | None = None
    protected: bool = False
    sessions: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One scrape round, aggregated: the session demand the fleet saw at `at`."""

    at: float
    sessions: float


@dataclasses.dataclass(frozen=True, slots=True)
class Recommendation:
    at: float
    replicas: int


@dataclasses.dataclass(frozen=True, slots=True)
class ScaleEvent:
    """A change of the desired count that was acted on; HPA's rate policies count these per period."""

    at: float
    change: int


@dataclasses.dataclass(frozen=True, slots=True)
class Trend:
    """Holt's state: the smoothed level, the trend per second and when it was last updated."""

    level: float
    slope: float
    at: float


@dataclasses.dataclass(frozen=True, slots=True)
class EngineMemory:
    """What the engine carries from one decision to the next; the operator keeps it in memory per object.

    Losing it (operator restart) is safe: the averages refill within one window, stabilization restarts
    from the current count, like HPA after a controller-manager restart.
    """

    samples: tuple[Sample, ...] = ()
    recommendations: tuple[Recommendation, ...] = ()
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()
    trend: Trend | None = None
    boot_seconds: tuple[float, ...] = ()  # measured clone+boot durations, newest last
    start_seconds: tuple[float, ...] = ()  # measured warm-VM start durations, newest last
    measured: frozenset[str] = frozenset()  # VMs whose boot is already measured


class Reason(enum.StrEnum):
    """Condition reasons, in HPA's vocabulary where HPA has the word."""

    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    TOO_FEW_REPLICAS = "TooFewReplicas"
    WITHIN_TOLERANCE = "WithinTolerance"
    FAILED_GET_METRICS = "FailedGetSessionMetrics"
    PAUSED = "Paused"
    EXTERNAL = "ExternalDesired"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What to do now. Names refer to `VMState.name`; counts are VMs to create from the template.

    `return_to_service` lists draining VMs put back in the load balancer because load came back: they
    are ready now, a fresh clone is minutes away.
    """

    desired: int
    create: int
    start: tuple[str, ...]
    return_to_service: tuple[str, ...]
    drain: tuple[str, ...]
    delete: tuple[str, ...]
    create_warm: int
    reason: Reason
    message: str
    current_sessions: float | None
    average_sessions: float | None
    forecast_sessions: float | None
    memory: EngineMemory

    @property
    def acts(self) -> bool:
        return bool(
            self.create or self.start or self.return_to_service or self.drain or self.delete or self.create_warm
        )
