"""What the crash and outage runs share: the demo stack tuned for faults, shoppers cycling through the
load balancer, the invariants watched every half second, and the operator as a process to kill and start."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import config

from webapp_scaler_dev.chaos.invariants import Invariants, Observation, Observer, converged
from webapp_scaler_dev.demo.load import LoadGenerator, LoadProfile, LoadStats
from webapp_scaler_dev.demo.stack import NAME, QUICK_STACK, DemoStack
from webapp_scaler_dev.processes import operator_process, stop

GOLDEN_NAME = "webshop-golden"
_ROUNDS = re.compile(r"^webapp_scaler_reconcile_duration_seconds_count\{[^}]*\}\s+([0-9.eE+]+)\s*$", re.M)

# The e2e demo's quick numbers: a scale-out, a drain and a removal fit in well under a minute, so every
# kill lands in a fleet that is busy doing one of them.
CHAOS_STACK = dataclasses.replace(QUICK_STACK, namespace="chaos")
# One load cycle, repeated for as long as the faults go on: 2 → 22 shoppers (five VMs' worth, one more
# than max) and back, so the fleet scales out (warm start, clones), drains, and returns drains to service.
CYCLE = LoadProfile(
    duration_s=80,
    base_users=2,
    peak_users=22,
    ramp_up=0.3,
    hold_peak=0.15,
    ramp_down=0.3,
    actions=(4, 7),
    think_s=(0.4, 1.2),
)

Progress = Callable[[str], None]


def sessions_figures(stats: list[LoadStats]) -> dict[str, Any]:
    return {
        "users": sum(s.users_started for s in stats),
        "checkouts": sum(s.checkouts for s in stats),
        "requests": sum(s.requests for s in stats),
        "sessions_lost": sum(s.sessions_lost for s in stats),
        "users_turned_away": sum(s.users_turned_away for s in stats),
        "errors": sum(s.errors for s in stats),
        "losses": [loss for s in stats for loss in s.losses][:20],
    }


class Shoppers:
    """`CYCLE` after `CYCLE` until cancelled; a user cancelled mid-visit is not a lost session (load.py)."""

    def __init__(self, url: str, profile: LoadProfile, seed: int, draining: Callable[[], frozenset[str]]) -> None:
        self.url, self.profile, self.seed, self.draining = url, profile, seed, draining
        self.stats: list[LoadStats] = []

    async def run(self) -> None:
        cycle = 0
        while True:
            load = LoadGenerator(self.url, self.profile, seed=self.seed * 1000 + cycle, draining=self.draining)
            self.stats.append(load.stats)
            await load.run()
            cycle += 1


@dataclass
class Watch:
    """The invariants, fed a fresh observation every `period_s`; a failed read is counted (the control
    plane may be down on purpose) and the next one tried."""

    observer: Observer
    invariants: Invariants
    period_s: float = 0.5
    latest: Observation | None = None
    errors: int = 0
    listeners: list[Callable[[Observation], None]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                obs = await asyncio.to_thread(self.observer.poll)
            except Exception:
                self.errors += 1
            else:
                self.invariants.record(obs)
                self.latest = obs
                for listener in self.listeners:
                    listener(obs)
            await asyncio.sleep(self.period_s)

    def draining(self) -> frozenset[str]:
        latest = self.latest
        return frozenset(v.name for v in latest.vms if v.draining_since) if latest else frozenset()

    async def until(
        self, predicate: Callable[[Observation], bool], within_s: float, after: float
    ) -> Observation | None:
        """The first observation taken after `after` (monotonic) that satisfies `predicate`, or None."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            latest = self.latest
            if latest is not None and latest.at > after and predicate(latest):
                return latest
            await asyncio.sleep(0.2)
        return None

    async def converged(self, warm_pool: int, within_s: float, after: float) -> Observation | None:
        return await self.until(lambda obs: converged(obs, warm_pool), within_s, after)

    def events_since(self, after: float) -> list[tuple[float, str, str]]:
        return [e for e in self.observer.history.event_log if e[0] > after]


async def wind_down(tasks: list[asyncio.Task[Any]], watch: Watch) -> None:
    """The end of a chaos run: its shoppers and its watch cancelled and awaited, the observer closed."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    watch.observer.close()


def make_watch(stack: DemoStack) -> Watch:
    """A client of its own (a thread polls with it while the load runs on the event loop)."""
    api = config.new_client_from_config(str(stack.kubeconfig))  # type: ignore[no-untyped-call]
    s = stack.settings
    invariants = Invariants(max_vms=s.max_vms + s.warm_pool, drain_timeout_s=s.drain_timeout_s)
    return Watch(Observer(api, s.namespace, NAME, GOLDEN_NAME), invariants)


class OperatorProcess:
    """The demo stack's operator, killed and started again on the same log and metrics port. Started from
    the calling (main) thread: the kernel ends a child when the thread that forked it exits."""

    def __init__(self, stack: DemoStack) -> None:
        assert stack.workdir is not None and stack.operator is not None
        self.stack = stack
        self.log = stack.workdir / "operator.log"
        self.metrics_port = int(stack.operator_metrics.rsplit(":", 1)[1]) if stack.operator_metrics else 0
        self.starts = 1

    @property
    def pid(self) -> int:
        assert self.stack.operator is not None
        return self.stack.operator.pid

    def alive(self) -> bool:
        return self.stack.operator is not None and self.stack.operator.poll() is None

    def rounds(self) -> int:
        """Rounds the running process has completed (its /metrics): 0 until the new process has read
        the cluster and the agents itself, so an old status left by its predecessor proves nothing."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode(errors="replace")
        except OSError:
            return 0
        return sum(int(float(v)) for v in _ROUNDS.findall(text))

    def kill(self) -> None:
        process = self.stack.operator
        assert process is not None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def start(self) -> None:
        with self.log.open("a") as out:  # where each process starts, for whoever reads the log
            out.write(f"---- chaos: operator start {self.starts + 1} at {time.time():.3f} ----\n")
        self.stack.operator = operator_process(
            self.stack.kubeconfig, self.log, [self.stack.settings.namespace], metrics_port=self.metrics_port
        )
        self.starts += 1

    def stop(self) -> None:
        if self.stack.operator is not None:
            stop(self.stack.operator, 20)


def patch_target(stack: DemoStack, target: int) -> None:
    """A spec change (a new generation) the operator must observe: spec.sessions.targetPerVM."""
    assert stack.cluster is not None
    patch = {"spec": {"sessions": {"targetPerVM": target}}}
    stack.cluster.kubectl(
        "patch", "webappscaling", NAME, "-n", stack.settings.namespace, "--type=merge", "-p", json.dumps(patch)
    )


def log_lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []
