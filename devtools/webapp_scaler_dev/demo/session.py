"""One demo run on a running stack: users through the load balancer while the monitor watches the
operator scale, until the load profile is over and the fleet has settled. The CLI and the end-to-end test
both call `drive`; the test asserts on the `DemoResult` it returns."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from webapp_scaler_dev.demo.load import LoadGenerator, LoadProfile, LoadStats
from webapp_scaler_dev.demo.monitor import History, Monitor, Snapshot
from webapp_scaler_dev.demo.picture import plot_history
from webapp_scaler_dev.demo.stack import NAME, DemoStack
from webapp_scaler_dev.demo.view import Frame


@dataclass
class DemoResult:
    history: History
    stats: LoadStats
    last: Snapshot
    duration_s: float
    reloads: int
    poll_errors: int = 0
    notes: list[str] = field(default_factory=list)
    picture: Path | None = None
    """demo.png in the stack's workdir: sessions, capacity and VMs by phase over the run."""


async def drive(
    stack: DemoStack,
    profile: LoadProfile,
    *,
    settle_s: float,
    on_frame: Callable[[Frame], None] = lambda _frame: None,
    poll_s: float = 1.0,
) -> DemoResult:
    """Run the load; then keep the base load for at most `settle_s` until nothing drains and the fleet has
    the size the operator wants (so the last scale-in is part of the run)."""
    assert stack.api is not None and stack.balancer is not None
    balancer = stack.balancer
    monitor = Monitor(stack.api, stack.settings.namespace, NAME)
    history = History()
    latest = Snapshot(at=time.monotonic())
    load = LoadGenerator(stack.lb_url, profile, draining=lambda: latest.draining)
    poll_errors = 0
    started = time.monotonic()

    def frame() -> Frame:
        return Frame(
            snapshot=latest,
            stats=load.stats,
            elapsed=time.monotonic() - started,
            total=profile.duration_s,
            target_per_vm=stack.settings.target_per_vm,
            lb_url=stack.lb_url,
            reloads=balancer.reloads,
        )

    async def watch() -> None:
        nonlocal latest, poll_errors
        while True:
            try:
                latest = await asyncio.to_thread(monitor.poll)
                history.record(latest)
            except Exception:  # one failed read must not end the demo; the count is reported
                poll_errors += 1
            on_frame(frame())
            await asyncio.sleep(poll_s)

    def settled() -> bool:
        serving = [vm for vm in latest.vms if vm.phase != "Warm"]  # the warm pool is not part of the fleet size
        return not latest.draining and latest.desired == len(serving) and bool(serving)

    watcher = asyncio.create_task(watch())
    try:
        await load.run(hold_base_until=settled, max_extra_s=settle_s)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await load.cancel()
    with contextlib.suppress(Exception):
        latest = await asyncio.to_thread(monitor.poll)
        history.record(latest)
    on_frame(frame())
    picture = None
    if stack.workdir is not None and history.timeline:
        title = (
            f"{stack.settings.namespace}/{NAME}: {profile.base_users}→{profile.peak_users}→{profile.base_users} "
            f"shoppers, target {stack.settings.target_per_vm} sessions per VM, {stack.settings.load_balancer}"
        )
        picture = await asyncio.to_thread(
            plot_history,
            history,
            stack.workdir / "demo.png",
            target_per_vm=stack.settings.target_per_vm,
            title=title,
        )
    return DemoResult(
        history=history,
        stats=load.stats,
        last=latest,
        duration_s=time.monotonic() - started,
        reloads=balancer.reloads,
        poll_errors=poll_errors,
        notes=list(stack.notes),
        picture=picture,
    )
