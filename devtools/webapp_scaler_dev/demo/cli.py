"""`webapp-scaler-dev demo [--minutes N] [--keep]`: bring up the local stack, send shoppers through the load balancer,
show the operator scale out and drain back in live, print a summary, tear everything down."""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.live import Live

from webapp_scaler_dev.demo.load import LoadProfile
from webapp_scaler_dev.demo.session import DemoResult, drive
from webapp_scaler_dev.demo.stack import DemoStack, StackSettings
from webapp_scaler_dev.demo.view import Frame, Steps, plain_line, render, summary


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=6.0, help="length of the load profile (default 6)")
    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards, until Ctrl-C")
    parser.add_argument("--target", type=int, default=20, help="target sessions per VM (default 20)")
    parser.add_argument("--max-vms", type=int, default=6, help="most VMs (default 6)")
    parser.add_argument(
        "--network", choices=("auto", "netns", "loopback"), default="auto", help="auto: netns when root"
    )
    parser.add_argument(
        "--load-balancer",
        choices=("haproxy", "nginx", "traefik"),
        default="haproxy",
        help="in front of the VMs (default haproxy; docs/load-balancers.md measures each)",
    )
    parser.add_argument(
        "--drain-mode",
        choices=("Readiness", "RefuseNewSessions"),
        help="spec.scaleIn.drain.mode (default: the operator's)",
    )
    parser.add_argument("--lb-port", type=int, default=0, help="the load balancer's port on 127.0.0.1 (default: free)")
    parser.add_argument("--workdir", type=Path, help="logs and state (default: a temporary directory)")
    parser.add_argument("--settle-seconds", type=float, default=150.0, help="most time for the last scale-in")
    parser.add_argument(
        "--picture", type=Path, help="also copy the run's picture (demo.png in the workdir) here, e.g. docs/demo.png"
    )


def profile_for(minutes: float, target: int) -> LoadProfile:
    """Up to 5× the target, then back to 1×: the fleet must grow to ~5 VMs and shrink to 1 or 2."""
    return LoadProfile(duration_s=minutes * 60, base_users=target, peak_users=5 * target)


def run(args: argparse.Namespace) -> int:
    console = Console()
    if not console.is_terminal:  # a log file: one status line per line, never wrapped, written at once
        if isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(line_buffering=True)
        console = Console(soft_wrap=True)
    settings = StackSettings(
        target_per_vm=args.target,
        max_vms=args.max_vms,
        network=args.network,
        lb_port=args.lb_port,
        load_balancer=args.load_balancer,
        drain_mode=args.drain_mode,
    )
    profile = profile_for(args.minutes, args.target)
    _sigterm_as_interrupt()
    result: DemoResult | None = None
    stack = DemoStack(settings, Steps(console), workdir=args.workdir, keep_workdir=args.workdir is not None)
    if stack.settings.network_mode != "netns":
        console.print(
            "[red]the demo needs root[/red] (CI and this machine's root shell have it): every VM gets a network "
            "namespace and a pod address, and the operator talks only to VM addresses a virt-launcher pod "
            "confirms — the emulator's loopback mode gives none (docs/security.md)"
        )
        return 2
    try:
        with stack:
            for note in stack.notes:
                console.print(f"[yellow]note:[/yellow] {note}")
            console.print(
                f"shoppers go through {settings.load_balancer} at {stack.lb_url}; operator, emulator and load "
                f"balancer logs in {stack.workdir} (removed at the end unless the run fails)"
            )
            if stack.prometheus is not None:
                console.print(
                    f"Prometheus at {stack.prometheus.url} scrapes the operator and every VM's agent, with "
                    "monitoring/alerts.yaml loaded (try /alerts, or a query of monitoring/dashboard.json)",
                    highlight=False,
                )
            try:
                result = asyncio.run(_watch(console, stack, profile, args.settle_seconds))
            except Exception:
                stack.keep_workdir = True
                console.print(f"[red]the demo failed[/red]; logs kept in {stack.workdir}")
                raise
            console.print(summary(result.history, result.stats, duration=result.duration_s, reloads=result.reloads))
            if result.picture is not None:
                kept = args.picture or result.picture
                if args.picture:
                    args.picture.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(result.picture, args.picture)
                gone = not args.picture and not stack.keep_workdir
                later = " (removed with the workdir: --picture PATH keeps a copy)" if gone else ""
                console.print(f"picture of the run (sessions, capacity, VMs by phase): {kept}{later}", highlight=False)
            if result.stats.sessions_lost:
                stack.keep_workdir = True
                console.print(f"[red]sessions were lost[/red]; logs kept in {stack.workdir}")
            if args.keep:
                _keep(console, stack)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: everything was torn down")
        if result is None:
            return 130
    return 0 if result is not None and result.stats.sessions_lost == 0 else 1


async def _watch(console: Console, stack: DemoStack, profile: LoadProfile, settle_s: float) -> DemoResult:
    if console.is_terminal:
        with Live(console=console, refresh_per_second=4, transient=False) as live:

            def show(frame: Frame) -> None:
                live.update(render(frame))

            return await drive(stack, profile, settle_s=settle_s, on_frame=show)

    printed_at, printed_events = [-1e9], [0]

    def log_line(frame: Frame) -> None:  # a log file gets a line every 5 s and every new event
        history_events = frame.snapshot.events
        for event in history_events[printed_events[0] :]:
            console.print(f"  event {event.reason}: {event.message}", highlight=False)
        printed_events[0] = len(history_events)
        if frame.elapsed - printed_at[0] >= 5:
            console.print(plain_line(frame), highlight=False)
            printed_at[0] = frame.elapsed

    return await drive(stack, profile, settle_s=settle_s, on_frame=log_line)


def _keep(console: Console, stack: DemoStack) -> None:
    console.print("The stack keeps running. In another shell:")
    console.print(f"  export KUBECONFIG={stack.kubeconfig}", highlight=False)
    console.print(f"  kubectl get was,vm,vmi,pods,endpointslices -n {stack.settings.namespace}", highlight=False)
    console.print(f"  curl -c /tmp/jar -X POST -d user=me {stack.lb_url}/login", highlight=False)
    if stack.prometheus is not None:
        console.print(f"  open {stack.prometheus.url}/alerts  (Prometheus, monitoring/alerts.yaml)", highlight=False)
    console.print("Ctrl-C stops and removes everything.")
    while True:
        time.sleep(3600)


def _sigterm_as_interrupt() -> None:
    """SIGTERM tears the stack down like Ctrl-C does."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
