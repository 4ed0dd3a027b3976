"""What a person watching the demo sees: a live table on a terminal, plain lines in a log, and a summary.

Everything here only formats; the figures come from the monitor's snapshots and the load's ledger.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from webapp_scaler_dev.demo.load import LoadStats
from webapp_scaler_dev.demo.monitor import History, Snapshot

PHASE_STYLE = {
    "Ready": "green",
    "Draining": "yellow",
    "Warm": "blue",
    "Cloning": "cyan",
    "Booting": "cyan",
    "Starting": "cyan",
}


@dataclass(frozen=True)
class Frame:
    snapshot: Snapshot
    stats: LoadStats
    elapsed: float
    total: float
    target_per_vm: int
    lb_url: str
    reloads: int


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def headline(frame: Frame) -> str:
    s = frame.stats
    return (
        f"{_clock(frame.elapsed)} / {_clock(frame.total)}  users {s.active_users} (target {s.target_users})  "
        f"requests {s.requests}  errors {s.errors}  sessions lost {s.sessions_lost}"
    )


def render(frame: Frame) -> RenderableType:
    snap, stats = frame.snapshot, frame.stats
    table = Table(title=f"webapp-scaler-dev demo  {headline(frame)}", title_justify="left", expand=False)
    table.add_column("VM")
    table.add_column("phase")
    table.add_column("sessions", justify="right")
    table.add_column("requests served", justify="right")
    table.add_column("served while draining", justify="right")
    for vm in snap.vms:
        style = PHASE_STYLE.get(vm.phase, "")
        while_draining = stats.served_while_draining.get(vm.name, 0)
        users = stats.drained_users(vm.name)
        table.add_row(
            vm.name,
            Text(vm.phase, style=style),
            "-" if vm.sessions is None else str(vm.sessions),
            str(stats.served_by.get(vm.name, 0)),
            f"{while_draining} ({users} users)" if while_draining else "",
        )
    footer = Text(
        f"desired {snap.desired}  ready {snap.ready}  sessions {snap.sessions if snap.sessions is not None else '-'}  "
        f"average {snap.average or '-'} (target {frame.target_per_vm}/VM)  "
        f"load balancer {frame.lb_url} (reloads {frame.reloads})"
    )
    last = snap.last_event
    event = Text(f"last event: {last.reason}: {last.message}" if last else "last event: -", style="dim")
    return Group(table, footer, event)


def plain_line(frame: Frame) -> str:
    snap = frame.snapshot
    vms = " ".join(f"{vm.name}={vm.phase}/{'-' if vm.sessions is None else vm.sessions}" for vm in snap.vms)
    return f"{headline(frame)}  desired {snap.desired} ready {snap.ready} avg {snap.average or '-'}  {vms}"


def summary(history: History, stats: LoadStats, *, duration: float, reloads: int) -> RenderableType:
    table = Table(title="summary", title_justify="left", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    drained = history.drained_and_deleted
    rows = [
        ("duration", _clock(duration)),
        ("peak VMs (ready)", f"{history.peak_vms} ({history.peak_ready})"),
        ("scale events", " ".join(f"{r} {n}" for r, n in sorted(history.event_counts.items())) or "0"),
        ("VMs drained then removed", f"{len(drained)} {' '.join(drained)}".strip()),
        ("users (turned away)", f"{stats.users_started} ({stats.users_turned_away})"),
        ("checkouts", str(stats.checkouts)),
        ("requests", str(stats.requests)),
        ("errors", f"{stats.errors} {dict(stats.error_kinds) if stats.error_kinds else ''}".strip()),
        ("login retries", str(stats.login_retries)),
        (
            "served by draining VMs",
            f"{sum(stats.served_while_draining.values())} requests of "
            f"{sum(len(u) for u in stats.users_while_draining.values())} logged-in users",
        ),
        ("load balancer reloads", str(reloads)),
        ("sessions lost", str(stats.sessions_lost)),
    ]
    for name, value in rows:
        style = "bold red" if name == "sessions lost" and stats.sessions_lost else ""
        table.add_row(name, Text(value, style=style or ("bold green" if name == "sessions lost" else "")))
    losses = [Text(f"  {loss}", style="red") for loss in stats.losses]
    return Group(table, *losses)


class Steps:
    """Long bring-up steps: a spinner on a terminal, a ✓ line with the time each took."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            if self.console.is_terminal:
                with self.console.status(what):
                    yield
            else:
                yield
        except BaseException:
            self.console.print(f"[red]✗[/red] {what} [dim]({time.monotonic() - started:.1f} s)[/dim]")
            raise
        self.console.print(f"[green]✓[/green] {what} [dim]({time.monotonic() - started:.1f} s)[/dim]")
