"""One scaling decision from one observation of the fleet: the function the operator calls every scrape
interval and the simulator calls in its place.

The chain:
1. observe: per-VM session counts → one sample of the fleet's sessions (rules in `observe`);
2. smooth: the moving average of the samples in the window (the user's kind and window);
3. predict: Holt's damped trend over the raw samples, looked ahead by the measured lead time (a warm
   start when the warm pool has a VM, else a clone and boot);
4. demand: the larger of the average and the forecast, minus the sessions that stay on draining VMs,
   so the fleet grows ahead of a rising load and shrinks only as fast as the average falls;
5. recommend with HPA's tolerance; when the observed total outpaces the forecast by a clear margin (a
   burst, `burst`), at least the VMs for the rise carried on over a clone's lead time, every warm VM
   started, no tolerance; then HPA's stabilization windows, rate policies and min/max;
6. act: return draining VMs to service first, then start warm VMs, then clone; on scale-in delete
   VMs that never served first, then drain the Ready VMs with the fewest sessions (then VMs that served
   and lost their readiness); delete drained VMs; keep the warm pool at its size.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence

from webapp_scaler import model, webappscaling
from webapp_scaler.constants import Reason
from webapp_scaler.engine import average, burst, drain, forecast, limits, normalize, observe, recommend

ACTIVE = (model.VMPhase.CLONING, model.VMPhase.BOOTING, model.VMPhase.STARTING, model.VMPhase.READY)
_BOOTS_KEPT = 10
_BOOTS_USED = 5


def decide(
    now: float, spec: webappscaling.ScalingSpec, vms: Sequence[model.VMState], memory: model.EngineMemory
) -> model.Decision:
    """Decide what to do with the fleet at `now`. Pure: the same arguments give the same decision."""
    memory = _recall_scale_events(now, spec, vms, memory)
    memory = _measure_boots(vms, memory)
    target = spec.sessions.target_per_vm
    current = sum(1 for vm in vms if vm.phase in ACTIVE)
    seen = observe.observe(
        vms,
        target_per_vm=target,
        current=current,
        fallback=spec.sessions.fallback,
        failed_rounds=memory.failed_rounds,
    )
    memory = dataclasses.replace(memory, failed_rounds=seen.failed_rounds)

    samples = memory.samples
    trend = memory.trend
    burst_seen: burst.Burst | None = None
    interval = float(spec.sessions.scrape_interval_seconds)
    if seen.fallback:
        pass  # not a measurement: the average and the trend keep only what was measured
    elif seen.sessions is not None:
        if spec.prediction.enabled:
            burst_seen = burst.respond(
                trend,
                samples,
                held_until=memory.burst_until,
                sessions=seen.sessions,
                now=now,
                lead_seconds=boot_estimate(memory),
                interval=interval,
                target_per_vm=target,
                spec=spec.prediction,
            )
        keep_after = now - max(spec.sessions.moving_average.window_seconds, interval)
        samples = (*(s for s in samples if s.at > keep_after), model.Sample(now, seen.sessions))
        trend = forecast.update_trend(trend, value=seen.sessions, at=now, spec=spec.prediction, interval=interval)
    if seen.fallback:
        averaged = seen.sessions  # spec.sessions.fallback.replicas × target, as KEDA feeds HPA
    elif seen.sessions is not None:
        averaged = average.moving_average(samples, now, spec.sessions.moving_average)
    else:
        averaged = None
    predicted = None
    if spec.prediction.enabled and trend is not None and seen.sessions is not None and not seen.fallback:
        warm_ready = any(vm.phase is model.VMPhase.WARM for vm in vms)
        horizon = spec.prediction.horizon_seconds or lead_time(memory, warm_available=warm_ready)
        predicted = forecast.forecast(trend, horizon_seconds=horizon, spec=spec.prediction, interval=interval)
    held_until = memory.burst_until
    memory = dataclasses.replace(memory, samples=samples, trend=trend, burst_until=None)

    if spec.paused:
        return _hold(current, memory, seen, averaged, predicted, Reason.PAUSED, "paused: no scale actions")

    message_demand = ""
    if spec.mode == "External":
        wanted = spec.replicas.desired if spec.replicas.desired is not None else current
        desired = min(max(wanted, spec.replicas.min), spec.replicas.max)
        reason = Reason.EXTERNAL
        message_demand = f"external desired {wanted}"
    elif averaged is None:
        bounded = normalize.out_of_range(current, spec.replicas)
        desired = bounded.replicas if bounded else current
        reason = bounded.reason if bounded else Reason.FAILED_GET_METRICS
        message_demand = f"no session metrics from {seen.missing} ready VMs"
    else:
        demand = active_demand(averaged, predicted, seen.draining_sessions)
        proposal = recommend.recommend_replicas(demand, current, target, spec.behavior.tolerance)
        burst_seen, burst_until = _burst_response(
            burst_seen, now, current, vms, target, seen.draining_sessions, held_until
        )
        if burst_seen is not None:
            proposal = max(proposal, burst_proposal(burst_seen, current, vms, target, seen.draining_sessions))
            memory = dataclasses.replace(memory, burst_until=burst_until)
        result = normalize.normalize(
            proposal,
            current,
            now=now,
            replicas=spec.replicas,
            behavior=spec.behavior,
            recommendations=memory.recommendations,
            up_events=memory.scale_up_events,
            down_events=memory.scale_down_events,
        )
        desired, reason = result.replicas, result.reason
        held = min(current, spec.replicas.max)  # spec.replicas.max still bounds the count
        if seen.missing and desired < held:
            # a Ready VM without a valid count may be full: never a scale-in on missing data (a sample
            # over target with a VM missing, averaged with older low ones, would otherwise shrink)
            desired, reason = held, Reason.FAILED_GET_METRICS
        ratio = recommend.usage_ratio(demand, current, target)
        if desired == current == proposal and current and abs(1.0 - ratio) <= spec.behavior.tolerance:
            reason = Reason.WITHIN_TOLERANCE
        memory = dataclasses.replace(memory, recommendations=result.recommendations)
        message_demand = _describe_demand(spec, averaged, predicted, seen.draining_sessions, current, target)
        if burst_seen is not None:
            seen_how = (
                f"{burst_seen.observed:.0f} sessions against {burst_seen.predicted:.0f} forecast"
                if burst_seen.detected
                else f"held {burst_seen.until - now:.0f} s more"
            )
            message_demand += f"; burst: {seen_how}, rising {burst_seen.rise_per_second * 60:.0f}/min"

        if seen.fallback:
            message_demand = (
                f"fallback after {seen.failed_rounds} rounds without a valid session count: "
                f"spec.sessions.fallback.replicas {spec.sessions.fallback.replicas}, never a scale-in"
            )
        elif seen.missing:
            message_demand += f"; {seen.missing} ready VM(s) without a valid count: no scale-in"

    if desired != current:
        up, down = limits.record_scale_event(
            memory.scale_up_events,
            memory.scale_down_events,
            now=now,
            previous=current,
            new=desired,
            behavior=spec.behavior,
        )
        memory = dataclasses.replace(memory, scale_up_events=up, scale_down_events=down)

    actions = _act(now, spec, vms, desired - current, served=memory.measured)
    verb = "scaled up" if desired > current else "scaled down" if desired < current else "holding"
    return model.Decision(
        desired=desired,
        create=actions.create,
        start=actions.start,
        return_to_service=actions.return_to_service,
        drain=actions.drain,
        delete=actions.delete,
        create_warm=actions.create_warm,
        reason=reason,
        message=f"{verb} {current}→{desired}: {message_demand} ({reason})",
        current_sessions=seen.sessions,
        average_sessions=averaged,
        forecast_sessions=predicted,
        memory=memory,
    )


def boot_estimate(memory: model.EngineMemory) -> float:
    """The typical clone+boot time: the median of the last few measured, robust to one slow clone."""
    if not memory.boot_seconds:
        return model.DEFAULT_BOOT_SECONDS
    return float(statistics.median(memory.boot_seconds[-_BOOTS_USED:]))


def lead_time(memory: model.EngineMemory, *, warm_available: bool) -> float:
    """How long a VM asked for now takes to serve: a warm start when the pool has a VM, else a clone."""
    if not warm_available:
        return boot_estimate(memory)
    if not memory.start_seconds:
        return model.DEFAULT_WARM_START_SECONDS
    return float(statistics.median(memory.start_seconds[-_BOOTS_USED:]))


def _recall_scale_events(
    now: float, spec: webappscaling.ScalingSpec, vms: Sequence[model.VMState], memory: model.EngineMemory
) -> model.EngineMemory:
    """A memory that has seen nothing (a restarted operator) learns the rate policies' recent history
    from the fleet itself: every VM cloned or warm-started within the longest scale-up period was a +1,
    every drain begun within the longest scale-down period a removal. Without this a restart forgets the
    rate limits (4 VMs allowed per period, 4 just created, 3 more at once after the restart)."""
    if memory != model.EngineMemory():
        return memory
    up_period = max((p.period_seconds for p in spec.behavior.scale_up.policies), default=0)
    down_period = max((p.period_seconds for p in spec.behavior.scale_down.policies), default=0)
    up: list[model.ScaleEvent] = []
    down: list[model.ScaleEvent] = []
    for vm in vms:
        if vm.phase is model.VMPhase.WARM:
            continue  # a stopped pool VM: filling the pool is no scale-up
        began = vm.started_at if vm.started_at is not None else vm.created_at
        if now - up_period < began <= now:
            up.append(model.ScaleEvent(began, 1))
        if vm.draining_since is not None and now - down_period < vm.draining_since <= now:
            down.append(model.ScaleEvent(vm.draining_since, 1))  # changes are counted positive both ways
    if not up and not down:
        return memory
    return dataclasses.replace(
        memory,
        scale_up_events=tuple(sorted(up, key=lambda e: e.at)),
        scale_down_events=tuple(sorted(down, key=lambda e: e.at)),
    )


def _measure_boots(vms: Sequence[model.VMState], memory: model.EngineMemory) -> model.EngineMemory:
    """Learn clone+boot and warm-start durations from VMs that became ready since the last call, and
    remember every VM seen serving (`measured`)."""
    boots = list(memory.boot_seconds)
    starts = list(memory.start_seconds)
    measured = set()
    for vm in vms:
        if vm.name in memory.measured:
            measured.add(vm.name)
        elif vm.phase in (model.VMPhase.READY, model.VMPhase.DRAINING):
            measured.add(vm.name)  # it has served: from now on it is drained, never dropped as unready
            since = vm.started_at if vm.started_at is not None else vm.created_at
            took = None if vm.ready_at is None else vm.ready_at - since
            if took is not None and 0 < took < 86400:
                (boots if vm.started_at is None else starts).append(took)
    if len(measured) == len(memory.measured) and measured == memory.measured:
        return memory
    return dataclasses.replace(
        memory,
        boot_seconds=tuple(boots[-_BOOTS_KEPT:]),
        start_seconds=tuple(starts[-_BOOTS_KEPT:]),
        measured=frozenset(measured),
    )


def burst_proposal(
    seen: burst.Burst, current: int, vms: Sequence[model.VMState], target: float, draining: float
) -> int:
    """The count a burst asks for: the VMs for its demand (less the sessions on draining VMs), no
    tolerance, never fewer than the fleet has; when that is more, every warm VM started on top too."""
    wanted = recommend.replicas_for(max(0.0, seen.demand - draining), target)
    if wanted <= current:
        return current
    warm = sum(1 for vm in vms if vm.phase is model.VMPhase.WARM)
    return max(wanted, current + warm)


def _burst_response(
    seen: burst.Burst | None,
    now: float,
    current: int,
    vms: Sequence[model.VMState],
    target: float,
    draining: float,
    held_until: float | None,
) -> tuple[burst.Burst | None, float | None]:
    """The burst response that acts this round, and the hold it leaves in memory. A burst that needs more
    VMs than the fleet has starts (or renews) a hold of a clone's lead time; one the fleet already covers
    asks for nothing and starts no hold, while an earlier hold runs on to its end."""
    if seen is None:
        return None, None
    if seen.detected and burst_proposal(seen, current, vms, target, draining) > current:
        return seen, seen.until
    if held_until is not None and now < held_until:
        return dataclasses.replace(seen, detected=False, until=held_until), held_until
    return None, None


def active_demand(averaged: float, predicted: float | None, draining: float) -> float:
    """The sessions the active (non-draining) VMs must carry `horizon` from now.

    The average and the forecast are taken over *all* sessions, so that draining a VM does not look like
    a drop in load; the sessions on draining VMs are then taken out, because they stay on their VM until
    they end and new users never join them. If the load comes back, the draining VMs are the first
    returned to service, so leaving them out costs no capacity.
    """
    total = max(averaged, predicted) if predicted is not None else averaged
    return max(0.0, total - draining)


def _describe_demand(
    spec: webappscaling.ScalingSpec,
    averaged: float,
    predicted: float | None,
    draining: float,
    current: int,
    target: float,
) -> str:
    ma = spec.sessions.moving_average
    text = f"{ma.window_seconds} s {ma.kind.lower()} average {averaged:.0f} sessions"
    if predicted is not None and predicted > averaged:
        text += f", forecast {predicted:.0f}"
    if draining > 0:
        text += f", {draining:.0f} on draining VMs"
    demand = active_demand(averaged, predicted, draining)
    capacity = current * target
    if capacity <= 0:
        return f"{text} with no VM"
    relation = ">" if demand > capacity else "<" if demand < capacity else "="
    return f"{text} {relation} {current} VMs × {target:g} target ({(demand / capacity - 1) * 100:+.0f} %)"


def _hold(
    current: int,
    memory: model.EngineMemory,
    seen: observe.Observation,
    averaged: float | None,
    predicted: float | None,
    reason: Reason,
    message: str,
) -> model.Decision:
    return model.Decision(
        desired=current,
        create=0,
        start=(),
        return_to_service=(),
        drain=(),
        delete=(),
        create_warm=0,
        reason=reason,
        message=message,
        current_sessions=seen.sessions,
        average_sessions=averaged,
        forecast_sessions=predicted,
        memory=memory,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Actions:
    create: int = 0
    start: tuple[str, ...] = ()
    return_to_service: tuple[str, ...] = ()
    drain: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    create_warm: int = 0


def _act(
    now: float, spec: webappscaling.ScalingSpec, vms: Sequence[model.VMState], delta: int, *, served: frozenset[str]
) -> _Actions:
    """Turn a change of the count into actions on named VMs. `served`: the VMs seen Ready (the engine's
    memory), which are drained, never deleted as not-yet-ready surplus."""
    timeout = spec.scale_in.drain.timeout_seconds
    returned: tuple[str, ...] = ()
    started: tuple[str, ...] = ()
    create = 0
    drain_now: tuple[str, ...] = ()
    delete = [vm.name for vm in vms if vm.phase is model.VMPhase.FAILED]
    warm = sorted((vm for vm in vms if vm.phase is model.VMPhase.WARM), key=lambda vm: (vm.created_at, vm.name))
    if delta > 0:
        returned = drain.choose_return_to_service(vms, delta, now=now, timeout_seconds=timeout)
        started = tuple(vm.name for vm in warm[: delta - len(returned)])
        create = delta - len(returned) - len(started)
    elif delta < 0:
        surplus = drain.choose_unready_surplus(vms, -delta, served)
        delete.extend(surplus)
        victims = drain.choose_drain_victims(vms, -delta - len(surplus), spec.scale_in.order, served)
        if spec.scale_in.drain.enabled:
            drain_now = victims
        else:
            delete.extend(victims)
    back = set(returned)
    delete.extend(n for n in drain.drained(vms, now=now, timeout_seconds=timeout) if n not in back)

    idle_warm = warm[len(started) :]
    create_warm = max(0, spec.warm_pool.size - len(idle_warm))
    if len(idle_warm) > spec.warm_pool.size:  # the pool was shrunk: the newest go first
        delete.extend(vm.name for vm in idle_warm[spec.warm_pool.size :][::-1])
    return _Actions(
        create=create,
        start=started,
        return_to_service=returned,
        drain=drain_now,
        delete=tuple(delete),
        create_warm=create_warm,
    )
