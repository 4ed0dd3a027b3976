"""The operator SIGKILLed again and again while shoppers hold sessions on its VMs.

Each kill first picks (seeded) the moment it aims at — just after a scale-up clones, a warm VM starts,
a drain begins, a drained VM is deleted, a drain is returned to service, the warm pool refills, or any
moment — waits for the operator's Event saying that happened, then a seeded fraction of a second or two
more, and kills. The operator stays dead a seeded moment (the world goes on: users, agents, the
emulator), sometimes while the spec changes, and is started again; the run then waits for the status to
converge. The invariants (invariants.py) are checked every half second throughout, not only after each
restart: a wrong action shows wherever it happens.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from webapp_scaler_dev.chaos.bed import (
    CYCLE,
    OperatorProcess,
    Progress,
    Shoppers,
    Watch,
    log_lines,
    make_watch,
    patch_target,
    sessions_figures,
    wind_down,
)
from webapp_scaler_dev.chaos.invariants import Observation, Violation
from webapp_scaler_dev.demo.stack import DemoStack

# moment → (Event reason, a part of its message); "any" waits for nothing
MOMENTS: dict[str, tuple[str, str] | None] = {
    "scale-up": ("ScaledUp", "created"),
    "warm-start": ("ScaledUp", "started warm VM"),
    "drain": ("Draining", "draining VM"),
    "delete": ("DeletedDrainedVM", "deleted VM"),
    "return-to-service": ("ScaledUp", "returned draining VM"),
    "warm-refill": ("WarmPoolFilled", "warm pool"),
    "any": None,
}


@dataclass(frozen=True)
class CrashSettings:
    kills: int = 50
    seed: int = 1
    converge_bound_s: float = 120.0
    """After a restart, the status must be current and every wanted VM ready within this."""
    moment_wait_s: float = 45.0
    """How long a kill waits for the moment it aims at before it kills anyway."""
    max_delay_s: float = 2.0
    max_down_s: float = 3.0
    spec_change_every: int = 5
    """Every n-th kill changes the spec while the operator is down: the new process must observe it."""


@dataclass(frozen=True)
class Kill:
    number: int
    aimed_at: str
    hit: bool
    after_event_s: float
    down_s: float
    spec_changed: bool
    converged_s: float | None


def matches(moment: str, reason: str, message: str) -> bool:
    wanted = MOMENTS[moment]
    return wanted is not None and reason == wanted[0] and wanted[1] in message


async def run_crashes(stack: DemoStack, settings: CrashSettings, progress: Progress = print) -> dict[str, Any]:
    """`settings.kills` kills on a running demo stack; the figures and every violation, as a dict."""
    rng = random.Random(settings.seed)
    watch = make_watch(stack)
    operator = OperatorProcess(stack)
    shoppers = Shoppers(stack.lb_url, CYCLE, settings.seed, watch.draining)
    started = time.monotonic()
    kills: list[Kill] = []
    target = stack.settings.target_per_vm
    tasks = [asyncio.create_task(watch.run()), asyncio.create_task(shoppers.run())]
    try:
        since = time.monotonic()
        for number in range(1, settings.kills + 1):
            moment = rng.choice(list(MOMENTS))
            delay = rng.uniform(0.0, settings.max_delay_s if moment != "any" else 10.0)
            down = rng.uniform(0.0, settings.max_down_s)
            hit = moment == "any"
            if not hit:
                deadline = time.monotonic() + settings.moment_wait_s
                while time.monotonic() < deadline and not hit:
                    hit = any(matches(moment, r, m) for _, r, m in watch.events_since(since))
                    await asyncio.sleep(0.1)
            await asyncio.sleep(delay)
            operator.kill()
            spec_changed = number % settings.spec_change_every == 0
            if spec_changed:
                target = stack.settings.target_per_vm + (1 if target == stack.settings.target_per_vm else 0)
                await asyncio.to_thread(patch_target, stack, target)
            await asyncio.sleep(down)
            operator.start()
            since = time.monotonic()
            obs = await _converged_by_new_process(watch, operator, stack, settings.converge_bound_s, since)
            converged_s = None if obs is None else obs.at - since
            if obs is None:
                bound = settings.converge_bound_s
                watch.invariants.violations.append(
                    Violation(since, "not_converged", f"kill {number}: not converged {bound:.0f} s after the restart")
                )
            kills.append(Kill(number, moment, hit, delay, down, spec_changed, converged_s))
            progress(
                f"kill {number}/{settings.kills} aimed at {moment} ({'hit' if hit else 'not seen'}), "
                f"converged {'never' if converged_s is None else f'in {converged_s:.1f} s'}, "
                f"violations {len(watch.invariants.violations)}, "
                f"sessions lost {sessions_figures(shoppers.stats)['sessions_lost']}"
            )
        final = await _converged_by_new_process(watch, operator, stack, settings.converge_bound_s, time.monotonic())
        if final is None:
            watch.invariants.violations.append(
                Violation(time.monotonic(), "not_converged", "not converged after the last kill")
            )
    finally:
        await wind_down(tasks, watch)
    log = log_lines(operator.log)
    converge_times = [k.converged_s for k in kills if k.converged_s is not None]
    return {
        "seed": settings.seed,
        "kills": len(kills),
        "operator_starts": operator.starts,
        "duration_s": round(time.monotonic() - started, 1),
        "moments": {m: sum(1 for k in kills if k.aimed_at == m) for m in MOMENTS},
        "moments_hit": {m: sum(1 for k in kills if k.aimed_at == m and k.hit) for m in MOMENTS},
        "spec_changes": sum(1 for k in kills if k.spec_changed),
        "converged_s_max": round(max(converge_times), 1) if converge_times else None,
        "converged_s_mean": round(sum(converge_times) / len(converge_times), 1) if converge_times else None,
        "violations": [asdict(v) for v in watch.invariants.violations],
        "deletions": len(watch.invariants.deletions),
        "deleted_holding_sessions": sum(1 for d in watch.invariants.deletions if (d.agent_sessions or 0) > 0),
        "peak_vms": watch.invariants.peak_vms,
        "observations": watch.invariants.observations,
        "poll_errors": watch.errors,
        "events": dict(watch.observer.history.event_counts),
        "sessions": sessions_figures(shoppers.stats),
        "operator_log": {
            "tracebacks": sum(1 for line in log if line.startswith("Traceback")),
            "another_operator_seen": sum(1 for line in log if "another operator acts" in line),
            "round_failed": sum(1 for line in log if "reconcile round failed" in line),
        },
        "kill_log": [asdict(k) for k in kills],
    }


async def _converged_by_new_process(
    watch: Watch, operator: OperatorProcess, stack: DemoStack, bound: float, since: float
) -> Observation | None:
    """Converged, on an observation taken after the restarted process completed two rounds of its own
    (one may be the round its first status write comes from)."""
    deadline = time.monotonic() + bound
    while await asyncio.to_thread(operator.rounds) < 2:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.5)
    return await watch.converged(stack.settings.warm_pool, max(0.0, deadline - time.monotonic()), time.monotonic())
