"""kube-apiserver and etcd stopped under a running operator while shoppers come and go, then started again.

The outage starts as the load falls (a scale-in becomes due while nothing can be written), lasts
`seconds`, and ends with the same ports, data and certificates, so every client may reconnect on its
own. Then:

- the operator is the same process (nobody restarted it) and resumed its watches: a spec change made
  after the outage is observed (status.observedGeneration), and the fleet converges;
- nothing was acted on stale data: no VM was drained or deleted while the control plane was down, and a
  draining-since annotation written after the outage carries a decision time at most a scrape interval
  (plus the scrape timeout and our polling) older than when we first saw it — a round held up by the
  outage that carried out an old decision would show as an old annotation;
- what the operator logged while the control plane was down, for the reader (the figures list it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from webapp_scaler_dev.chaos.bed import (
    CYCLE,
    OperatorProcess,
    Progress,
    Shoppers,
    log_lines,
    make_watch,
    patch_target,
    sessions_figures,
    wind_down,
)
from webapp_scaler_dev.chaos.invariants import Observation, Violation
from webapp_scaler_dev.demo.load import LoadProfile
from webapp_scaler_dev.demo.stack import DemoStack


@dataclass(frozen=True)
class OutageSettings:
    seconds: float = 60.0
    seed: int = 1
    start_after_s: float = CYCLE.duration_s * (CYCLE.ramp_up + CYCLE.hold_peak)
    """Into the load: the peak is over, sessions end, a scale-in becomes due during the outage."""
    converge_bound_s: float = 120.0
    drain_wait_s: float = 90.0
    """After the outage, how long to wait for the scale-in whose decision time is checked."""
    staleness_slack_s: float = 3.0

    def profile(self) -> LoadProfile:
        """One peak as in `CYCLE`, then its base load long after the outage: the fleet is over-sized when
        the control plane returns, so the first scale-in decisions come right after it."""
        duration = self.start_after_s + self.seconds + 2 * self.converge_bound_s + self.drain_wait_s
        ramp = CYCLE.duration_s / duration
        return dataclasses.replace(
            CYCLE,
            duration_s=duration,
            ramp_up=CYCLE.ramp_up * ramp,
            hold_peak=CYCLE.hold_peak * ramp,
            ramp_down=CYCLE.ramp_down * ramp,
        )


# the operator's lines (plain format, no level) that say a request or a step failed
TROUBLE = re.compile(r"failed|refused|Retrying|escalating|Max retries|Traceback", re.IGNORECASE)


async def run_outage(stack: DemoStack, settings: OutageSettings, progress: Progress = print) -> dict[str, Any]:
    assert stack.cluster is not None
    cluster = stack.cluster
    watch = make_watch(stack)
    operator = OperatorProcess(stack)
    pid = operator.pid
    shoppers = Shoppers(stack.lb_url, settings.profile(), settings.seed, watch.draining)
    violations = watch.invariants.violations
    started = time.monotonic()
    tasks = [asyncio.create_task(watch.run()), asyncio.create_task(shoppers.run())]
    scrape_s = stack.settings.scrape_s
    stale_bound = scrape_s + 1 + 2 * watch.period_s + settings.staleness_slack_s  # + the 1 s scrape timeout
    try:
        await asyncio.sleep(settings.start_after_s)
        before = watch.latest
        assert before is not None, "no observation before the outage"
        log_mark = len(log_lines(operator.log))
        progress(f"stopping kube-apiserver and etcd for {settings.seconds:.0f} s ({len(before.vms)} VMs)")
        down_wall = time.time()
        await asyncio.to_thread(cluster.stop_control_plane)
        down_at = time.monotonic()
        await asyncio.sleep(settings.seconds)
        fresh: dict[str, float] = {}  # VM → how old its draining-since was when first seen after the outage

        def note_drains(obs: Observation) -> None:
            for vm in obs.vms:
                if vm.draining_since is not None and vm.draining_since > down_wall and vm.name not in fresh:
                    fresh[vm.name] = obs.wall - vm.draining_since

        watch.listeners.append(note_drains)
        # The operator may reach the apiserver (and act, on fresh agent counts) before our readiness poll
        # returns: the outage, for what the operator decided, ends when the control plane starts again.
        restart_wall = time.time()
        await asyncio.to_thread(cluster.start_control_plane)
        up_at = time.monotonic()
        progress(f"control plane back after {up_at - down_at:.0f} s")
        outage_log = log_lines(operator.log)[log_mark:]
        first = await watch.until(lambda _: True, 60, up_at)
        if first is None:
            violations.append(Violation(up_at, "no_reads", "the control plane answered us no read after restarting"))
        else:
            for vm in first.vms:
                since = vm.draining_since
                if since is not None and down_wall <= since < restart_wall:
                    violations.append(Violation(first.at, "acted_during_outage", f"{vm.name} drained at {since:.1f}"))
        # the watches resumed: a spec change after the outage is observed by the same process
        target = stack.settings.target_per_vm + 1
        await asyncio.to_thread(patch_target, stack, target)
        changed_at = time.monotonic()
        observed = await watch.until(
            lambda obs: obs.observed_generation == obs.generation and obs.at > changed_at + 0.5,
            settings.converge_bound_s,
            changed_at,
        )
        observed_s = None if observed is None else observed.at - changed_at
        if observed is None:
            violations.append(Violation(changed_at, "watch_not_resumed", "the spec change was never observed"))
        obs = await watch.converged(stack.settings.warm_pool, settings.converge_bound_s, changed_at)
        converged_s = None if obs is None else obs.at - up_at
        if obs is None:
            violations.append(Violation(up_at, "not_converged", "not converged after the outage"))
        # a scale-in after the outage, if the cycle brings one, on fresh counts
        await watch.until(lambda _: bool(fresh), settings.drain_wait_s, up_at)
        for name, age in fresh.items():
            if age > stale_bound:
                violations.append(Violation(up_at, "stale_decision", f"{name}: drain decided {age:.1f} s before seen"))
        if not operator.alive() or operator.pid != pid:
            violations.append(Violation(up_at, "operator_restarted", "the operator process did not live through it"))
    finally:
        await wind_down(tasks, watch)
    after = watch.events_since(up_at)
    return {
        "seed": settings.seed,
        "outage_s": round(up_at - down_at, 1),
        "duration_s": round(time.monotonic() - started, 1),
        "operator_same_process": operator.alive() and operator.pid == pid,
        "spec_change_observed_s": None if observed_s is None else round(observed_s, 1),
        "converged_after_outage_s": None if converged_s is None else round(converged_s, 1),
        "drains_after_outage": {name: round(age, 1) for name, age in fresh.items()},
        "staleness_bound_s": stale_bound,
        "events_after_outage": [f"{reason}: {message}" for _, reason, message in after][:20],
        "violations": [asdict(v) for v in violations],
        "deletions": len(watch.invariants.deletions),
        "poll_errors": watch.errors,
        "sessions": sessions_figures(shoppers.stats),
        "operator_log_during_outage": {
            "lines": len(outage_log),
            "trouble": sum(1 for line in outage_log if TROUBLE.search(line)),
            "tracebacks": sum(1 for line in outage_log if line.startswith("Traceback")),
            "sample": sorted({line[:160] for line in outage_log if TROUBLE.search(line) and line[:1] != " "})[:8],
        },
    }
