"""The data the engine reads and returns: VM states, samples, its memory between rounds, the decision.

The spec the engine reads is `webappscaling.ScalingSpec`; this module holds what the controller observes
and what the engine remembers and decides. All of it frozen: the engine returns new values, never edits.
"""

from __future__ import annotations

import dataclasses
import enum

from webapp_scaler.constants import Reason

# Used as the prediction horizon until the first VM of a WebAppScaling has been measured booting.
DEFAULT_BOOT_SECONDS = 90.0
# The same for starting a warm (pre-cloned, stopped) VM: the boot without the clone.
DEFAULT_WARM_START_SECONDS = 45.0


class VMPhase(enum.StrEnum):
    """A VM's life as the controller sees it (from the VM, its DataVolume and its VMI)."""

    CLONING = "Cloning"  # the root disk is being cloned from the golden image
    BOOTING = "Booting"  # disk ready, VMI starting, not ready yet
    READY = "Ready"  # VMI ready and in the load balancer
    DRAINING = "Draining"  # ready, but taken out of the load balancer for new sessions
    WARM = "Warm"  # warm pool: pre-cloned (or still cloning), stopped
    STARTING = "Starting"  # a warm VM that was started and is booting
    FAILED = "Failed"  # clone or boot failed
    # runStrategy Halted outside the warm pool: a person stopped it (kubectl patch, virtctl stop). Not
    # capacity — a stopped VM serves nobody — and never chosen, drained or deleted: it may be stopped to
    # be inspected, and the operator does not fight a person over it
    STOPPED = "Stopped"


@dataclasses.dataclass(frozen=True, slots=True)
class VMState:
    """One VM as read from the cluster at `now`.

    `phase` is the one the round works with: what the cluster says, corrected by the actions the watch
    has not shown yet (`expectations`). `sessions` is the agent's count scraped this round, or None when
    it could not be scraped (or in phases where no agent runs). `started_at` is when a warm VM was
    started; `ready_at` when it became ready the last time. Times are float seconds on the controller's
    clock. `ip` is the VMI's address, where its agent answers; the engine never reads it.
    """

    name: str
    phase: VMPhase
    created_at: float
    ready_at: float | None = None
    started_at: float | None = None
    draining_since: float | None = None
    protected: bool = False
    sessions: float | None = None
    ip: str | None = None


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
    measured: frozenset[str] = frozenset()  # VMs seen Ready or draining: boot measured, and they have served
    failed_rounds: int = 0  # rounds in a row in which no Ready VM gave a valid count (spec.sessions.fallback)
    burst_until: float | None = None  # a burst response holds until then (engine.burst)


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
