"""Run policies over one session stream and measure them the same way.

Metrics (over the scored part of the run, i.e. after the warm-up):
- `overload_session_minutes`: sessions above capacity on their VM (plus users waiting for any ready VM),
  summed over time, in session-minutes;
- `overload_minutes`: minutes during which any session was above capacity;
- `vm_minutes`: running VMs (cloning, booting, ready, draining) over time; warm-pool VMs are stopped and
  reported apart as `warm_vm_minutes`;
- `cost_vm_minutes`: what the fleet costs, the figure every comparison uses: running VM-minutes +
  `warm_cost` × stopped warm VM-minutes + the clone time of every VM. A cold VM's clone is already in its
  running minutes (it counts once, in full); a warm VM's clone is added in full, and only its stopped
  minutes after the clone are discounted. Without it a warm pool would look free;
- `sessions_dropped`: sessions on VMs deleted while the session was alive (a dropped user comes back
  once as a new session, adding load; dropped again, it counts again);
- `scale_events`: changes of the count the policy asks for;
- `max_vms`: the most VMs running at once.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from webapp_scaler_dev.simulation import fleet as sim_fleet
from webapp_scaler_dev.simulation import policies, sessions
from webapp_scaler_dev.simulation import settings as sim_settings
from webapp_scaler_dev.simulation import trace as traces
from webapp_scaler_dev.simulation.policies import oracle


@dataclasses.dataclass
class PolicyResult:
    name: str
    metrics: dict[str, float]
    sessions: npt.NDArray[np.float64]  # per minute, scored part
    ready_capacity: npt.NDArray[np.float64]  # open Ready VMs x capacity + sessions held by draining VMs
    vms: npt.NDArray[np.float64]
    seconds: float = 0.0  # wall time of this policy's simulation
    cost: npt.NDArray[np.float64] | None = None  # cost_vm_minutes' rate per minute (None: same as vms)

    @property
    def cost_rate(self) -> npt.NDArray[np.float64]:
        return self.vms if self.cost is None else self.cost


@dataclasses.dataclass
class Run:
    trace: traces.Trace  # the simulated slice, warm-up included
    settings: sim_settings.SimulationSettings
    stream: sessions.SessionStream
    score_from: int  # first scored step
    results: dict[str, PolicyResult]

    @property
    def scored_start(self) -> float:
        return self.trace.start + self.score_from * self.settings.step_seconds

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        return {
            "trace": self.trace.name,
            "settings": {
                "capacity": s.capacity,
                "target_per_vm": s.target_per_vm,
                "boot_seconds": s.boot_seconds,
                "clone_share": s.clone_share,
                "boot_jitter": s.boot_jitter,
                "peak_vms": s.peak_vms,
                "peak_sessions": s.peak_sessions,
                "min_replicas": s.min_replicas,
                "max_replicas": s.max_replicas,
                "step_seconds": s.step_seconds,
                "warmup_seconds": s.warmup_seconds,
                "seed": s.seed,
                "session_model": dataclasses.asdict(s.session_model),
                "sessions_per_request": self.stream.scale,
                "prometheus_scrape_seconds": s.prometheus_scrape_seconds,
                "hpa_sync_seconds": s.hpa_sync_seconds,
                "keda_polling_seconds": s.keda_polling_seconds,
                "keda_cooldown_seconds": s.keda_cooldown_seconds,
                "sma_window_seconds": s.sma_window_seconds,
                "sma_lower_share": s.sma_lower_share,
                "drain_timeout_seconds": s.drain_timeout_seconds,
                "tuned_scale_down_window_seconds": s.tuned_scale_down_window_seconds,
                "warm_cost": s.warm_cost,
                "arrivals": s.arrivals,
                "dropped_return": s.dropped_return,
                "engine_spec": s.engine_spec,
                "longest_session_seconds": s.session_model.max_lifetime_seconds,
                "scored_from": datetime.datetime.fromtimestamp(self.scored_start, tz=datetime.UTC).isoformat(),
                "scored_minutes": (len(self.stream.arrivals) - self.score_from) * s.step_seconds / 60,
            },
            "policies": {name: r.metrics for name, r in self.results.items()},
        }


def prepare(
    trace: traces.Trace,
    settings: sim_settings.SimulationSettings,
    *,
    score_from_seconds: float,
    scale_from: traces.Trace | None = None,
) -> tuple[sessions.SessionStream, int]:
    stream = sessions.build_stream(
        trace,
        settings.session_model,
        step_seconds=settings.step_seconds,
        peak_sessions=settings.peak_sessions,
        seed=settings.seed,
        scale_from=scale_from,
        arrivals=settings.arrivals,
    )
    return stream, round(score_from_seconds / settings.step_seconds)


def _per_minute(values: npt.NDArray[Any], steps_per_minute: int) -> npt.NDArray[np.float64]:
    minutes = len(values) // steps_per_minute
    return np.asarray(
        values[: minutes * steps_per_minute].reshape(minutes, steps_per_minute).mean(axis=1), dtype=np.float64
    )


def simulate_policy(
    name: str, stream: sessions.SessionStream, settings: sim_settings.SimulationSettings, score_from: int
) -> PolicyResult:
    started = time.perf_counter()
    dt = settings.step_seconds
    steps = len(stream.arrivals)
    fleet = sim_fleet.SimulatedFleet(
        settings.fleet_params(),
        steps=steps,
        step_seconds=dt,
        max_lifetime_steps=stream.max_lifetime_steps,
        seed=settings.seed,
        slots=settings.max_replicas * 3 + 64,
    )
    fleet.create(-settings.boot_seconds * 2, settings.min_replicas)  # the fleet starts at min, all ready
    policy = policies.POLICIES[name](settings)
    overload = np.zeros(steps, dtype=np.int64)
    live = np.zeros(steps, dtype=np.int64)
    ready = np.zeros(steps, dtype=np.int64)
    running = np.zeros(steps, dtype=np.int64)
    warm = np.zeros(steps, dtype=np.int64)
    cost = np.zeros(steps, dtype=np.float64)
    returns = np.random.default_rng([settings.seed, 0x2E7])
    model = settings.session_model
    events = 0
    dropped_before = 0
    desired = policy.desired
    bounds = stream.bounds
    lifetimes = stream.lifetimes
    capacity = settings.capacity
    for step in range(steps):
        now = step * dt
        fleet.advance(step, now)
        new = lifetimes[bounds[step] : bounds[step + 1]]
        back = fleet.returns_due if settings.dropped_return else 0
        fleet.returns_due = 0
        if back:
            new = np.concatenate([new, model.draw_lifetimes(returns, back, dt)])
        fleet.arrive(new, returning=back)
        policy.act(now, fleet)
        if policy.desired != desired:
            desired = policy.desired
            events += step >= score_from
        if step == score_from:
            dropped_before = fleet.dropped
        phases = np.bincount(fleet.phase, minlength=7)
        excess = fleet.sessions - capacity
        overload[step] = excess[excess > 0].sum() + fleet.waiting
        live[step] = fleet.sessions.sum() + fleet.waiting
        ready[step] = phases[sim_fleet.READY] * capacity
        if phases[sim_fleet.DRAINING]:
            ready[step] += fleet.sessions[fleet.phase == sim_fleet.DRAINING].sum()
        running[step] = steps_running(phases)
        warm[step] = phases[sim_fleet.WARM]
        if warm[step]:
            cloning = int(np.count_nonzero((fleet.phase == sim_fleet.WARM) & (fleet.clone_done_at > now)))
            cost[step] = running[step] + cloning + settings.warm_cost * (warm[step] - cloning)
        else:
            cost[step] = running[step]
    scored = slice(score_from, steps)
    per_minute = round(60 / dt)
    metrics = {
        "overload_session_minutes": float(overload[scored].sum() * dt / 60),
        "overload_minutes": float((overload[scored] > 0).sum() * dt / 60),
        "vm_minutes": float(running[scored].sum() * dt / 60),
        "warm_vm_minutes": float(warm[scored].sum() * dt / 60),
        "cost_vm_minutes": float(cost[scored].sum() * dt / 60),
        "sessions_dropped": int(fleet.dropped - dropped_before),
        "scale_events": int(events),
        "max_vms": int(running[scored].max()),
    }
    return PolicyResult(
        name,
        metrics,
        _per_minute(live[scored], per_minute),
        _per_minute(ready[scored], per_minute),
        _per_minute(running[scored], per_minute),
        time.perf_counter() - started,
        _per_minute(cost[scored], per_minute),
    )


def steps_running(phases: npt.NDArray[np.int64]) -> int:
    return int(sum(phases[p] for p in sim_fleet.RUNNING))


def simulate_oracle(
    stream: sessions.SessionStream, settings: sim_settings.SimulationSettings, score_from: int
) -> PolicyResult:
    started = time.perf_counter()
    per_minute = round(60 / settings.step_seconds)
    concurrent = stream.concurrent()[score_from:]
    needed = oracle.needed_per_minute(concurrent, per_minute, settings.capacity)
    clones = int(np.clip(np.diff(needed), 0, None).sum())
    metrics = {
        "overload_session_minutes": 0.0,
        "overload_minutes": 0.0,
        "vm_minutes": float(needed.sum()),
        "warm_vm_minutes": 0.0,
        "cost_vm_minutes": float(needed.sum()) + clones * clone_minutes(settings),
        "sessions_dropped": 0,
        "scale_events": int((np.diff(needed) != 0).sum()),
        "max_vms": int(needed.max()),
    }
    sessions_per_minute = _per_minute(concurrent, per_minute)
    return PolicyResult(
        policies.ORACLE,
        metrics,
        sessions_per_minute,
        needed.astype(np.float64) * settings.capacity,
        needed.astype(np.float64),
        time.perf_counter() - started,
    )


def clone_minutes(settings: sim_settings.SimulationSettings) -> float:
    """The mean clone time of one VM, in minutes: what an oracle's instantly added VM is charged."""
    return settings.boot_seconds * settings.clone_share / 60


def simulate_oracle_drain(
    stream: sessions.SessionStream, settings: sim_settings.SimulationSettings, score_from: int
) -> PolicyResult:
    started = time.perf_counter()
    dt = settings.step_seconds
    per_minute = round(60 / dt)
    packed = oracle.pack(
        stream.arrivals,
        stream.bounds,
        stream.lifetimes,
        capacity=settings.capacity,
        max_lifetime_steps=stream.max_lifetime_steps,
    )
    scored = slice(score_from, len(stream.arrivals))
    vm_minutes = float(packed.vms[scored].sum() * dt / 60)
    clones = int(packed.created[scored].sum())
    changes = np.diff(packed.vms[scored])
    metrics = {
        "overload_session_minutes": 0.0,
        "overload_minutes": 0.0,
        "vm_minutes": vm_minutes,
        "warm_vm_minutes": 0.0,
        "cost_vm_minutes": vm_minutes + clones * clone_minutes(settings),
        "sessions_dropped": 0,
        "scale_events": int((changes != 0).sum()),
        "max_vms": int(packed.vms[scored].max()),
    }
    vms = _per_minute(packed.vms[scored], per_minute)
    return PolicyResult(
        policies.ORACLE_DRAIN,
        metrics,
        _per_minute(packed.sessions[scored], per_minute),
        vms * settings.capacity,
        vms,
        time.perf_counter() - started,
    )


def simulate(
    trace: traces.Trace,
    settings: sim_settings.SimulationSettings,
    names: Sequence[str],
    *,
    score_from_seconds: float,
    scale_from: traces.Trace | None = None,
    workers: int = 1,
) -> Run:
    """Every named policy over the same session stream (in parallel processes when workers > 1)."""
    stream, score_from = prepare(trace, settings, score_from_seconds=score_from_seconds, scale_from=scale_from)
    results: dict[str, PolicyResult] = {}
    fleet_names = [n for n in names if n not in policies.ORACLES]
    if workers > 1 and len(fleet_names) > 1:
        import concurrent.futures
        import multiprocessing

        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {n: pool.submit(simulate_policy, n, stream, settings, score_from) for n in fleet_names}
            if policies.ORACLE_DRAIN in names:
                futures[policies.ORACLE_DRAIN] = pool.submit(simulate_oracle_drain, stream, settings, score_from)
            computed = {n: f.result() for n, f in futures.items()}
    else:
        computed = {n: simulate_policy(n, stream, settings, score_from) for n in fleet_names}
    for name in names:
        if name == policies.ORACLE:
            results[name] = simulate_oracle(stream, settings, score_from)
        elif name not in computed:
            results[name] = simulate_oracle_drain(stream, settings, score_from)
        else:
            results[name] = computed[name]
    return Run(trace, settings, stream, score_from, results)
