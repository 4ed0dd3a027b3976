"""`webapp-scaler-dev simulate`: replay traffic traces through our engine and the baselines.

webapp-scaler-dev simulate --trace FILE [--policy NAME]... [--json OUT] [--plot OUT.png] [--seed N]
webapp-scaler-dev simulate --all-traces --out docs/bench          # the full benchmark (make bench)
webapp-scaler-dev simulate --trace FILE --start peak --hours 4    # the quick form CI runs
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from webapp_scaler_dev.simulation import policies, sessions
from webapp_scaler_dev.simulation import run as sim_run
from webapp_scaler_dev.simulation import settings as sim_settings
from webapp_scaler_dev.simulation import trace as traces

# metric -> column header of the printed table
METRICS = {
    "overload_session_minutes": "overload\nsession-min",
    "overload_minutes": "overload\nmin",
    "vm_minutes": "VM-min",
    "sessions_dropped": "sessions\ndropped",
    "scale_events": "scale\nevents",
    "max_vms": "max\nVMs",
    "warm_vm_minutes": "warm VM-min\n(stopped)",
}


def default_traces_dir() -> Path:
    here = Path("benchmarks/traces")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "benchmarks" / "traces"


def configure(parser: argparse.ArgumentParser) -> None:
    d = sim_settings.SimulationSettings()
    m = sessions.SessionModel()
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--trace", type=Path, action="append", help="CSV trace (timestamp,requests|sessions)")
    what.add_argument("--all-traces", action="store_true", help="every CSV in --traces-dir")
    parser.add_argument("--traces-dir", type=Path, default=None, help="default: benchmarks/traces")
    parser.add_argument("--policy", action="append", choices=policies.NAMES, help="repeat for several; default: all")
    parser.add_argument("--json", type=Path, help="write the results as JSON (one trace)")
    parser.add_argument("--plot", type=Path, help="write the plot as PNG (one trace)")
    parser.add_argument("--out", type=Path, help="directory for <trace>.json and <trace>.png per trace")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--capacity", type=int, default=d.capacity, help="sessions per VM before overload")
    parser.add_argument("--target", type=float, default=d.target_per_vm, help="target sessions per VM")
    parser.add_argument("--boot-time", type=float, default=d.boot_seconds, help="clone + boot seconds")
    parser.add_argument("--peak-vms", type=int, default=d.peak_vms, help="VMs the trace's peak needs at capacity")
    parser.add_argument("--start", help="ISO time or 'peak' (centre the window on the busiest step)")
    parser.add_argument("--hours", type=float, help="simulate only this many hours (after a warm-up)")
    parser.add_argument("--warmup", type=float, default=d.warmup_seconds, help="unscored seconds first")
    parser.add_argument("--idle-timeout", type=float, default=m.idle_timeout_seconds, help="seconds")
    parser.add_argument("--mean-visit", type=float, default=m.mean_visit_seconds, help="seconds")
    parser.add_argument("--max-visit", type=float, default=m.max_visit_seconds, help="seconds")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes")


def settings_from(args: argparse.Namespace) -> sim_settings.SimulationSettings:
    return sim_settings.SimulationSettings(
        capacity=args.capacity,
        target_per_vm=args.target,
        boot_seconds=args.boot_time,
        peak_vms=args.peak_vms,
        max_replicas=max(sim_settings.SimulationSettings().max_replicas, args.peak_vms * 3),
        warmup_seconds=args.warmup,
        seed=args.seed,
        session_model=sessions.SessionModel(
            idle_timeout_seconds=args.idle_timeout,
            mean_visit_seconds=args.mean_visit,
            max_visit_seconds=args.max_visit,
        ),
    )


def simulate_trace(
    full: traces.Trace,
    settings: sim_settings.SimulationSettings,
    names: list[str],
    *,
    start: str | None = None,
    hours: float | None = None,
    workers: int = 1,
) -> sim_run.Run:
    """Pick the window (warm-up included), then run every policy on it."""
    if start is None and hours is None:
        return sim_run.simulate(full, settings, names, score_from_seconds=settings.warmup_seconds, workers=workers)
    if start is None or start == "peak":
        centre = traces.peak_time(full)
        scored_start = centre - (hours or 0) * 1800 if start == "peak" else full.start + settings.warmup_seconds
    else:
        scored_start = traces.parse_timestamp(start)
    sim_start = max(full.start, scored_start - settings.warmup_seconds)
    span = None if hours is None else (scored_start - sim_start) / 3600 + hours
    sliced = traces.window(full, start=sim_start, hours=span)
    return sim_run.simulate(
        sliced, settings, names, score_from_seconds=scored_start - sliced.start, scale_from=full, workers=workers
    )


def print_run(console: Console, result: sim_run.Run, wall: float) -> None:
    table = Table(title=f"{result.trace.name}  ({wall:.1f} s)", title_justify="left")
    table.add_column("policy", no_wrap=True)
    for header in METRICS.values():
        table.add_column(header, justify="right")
    for name, r in result.results.items():
        row = [f"{r.metrics[m]:,.0f}" if isinstance(r.metrics[m], float) else f"{r.metrics[m]:,}" for m in METRICS]
        table.add_row(name, *row, style="bold" if name == "webapp-scaler" else None)
    console.print(table)
    verdict = acceptance(result)
    if verdict:
        console.print(verdict)


def acceptance(result: sim_run.Run) -> str:
    """The product's promise on this run, in one line (empty when the needed policies did not run)."""
    r = result.results
    if not {"webapp-scaler", "hpa", "hpa-drain"} <= r.keys():
        return ""
    ours = r["webapp-scaler"].metrics
    checks = {
        "no session dropped": ours["sessions_dropped"] == 0,
        "overload <= half of hpa's and hpa-drain's": all(
            ours["overload_session_minutes"] <= 0.5 * r[b].metrics["overload_session_minutes"]
            for b in ("hpa", "hpa-drain")
        )
        or ours["overload_session_minutes"] == 0,
        "vm-minutes <= hpa-drain's": ours["vm_minutes"] <= r["hpa-drain"].metrics["vm_minutes"],
    }
    return "  ".join(f"{'PASS' if ok else 'FAIL'} {what}" for what, ok in checks.items())


def run(args: argparse.Namespace) -> int:
    console = Console(width=max(Console().width, 110))
    settings = settings_from(args)
    names = list(dict.fromkeys(args.policy or policies.NAMES))
    paths = args.trace or sorted((args.traces_dir or default_traces_dir()).glob("*.csv"))
    if not paths:
        console.print("no trace found")
        return 2
    if len(paths) > 1 and (args.json or args.plot):
        console.print("--json/--plot take one trace; use --out DIR for several")
        return 2
    for path in paths:
        started = time.perf_counter()
        result = simulate_trace(
            traces.load_trace(path), settings, names, start=args.start, hours=args.hours, workers=args.workers
        )
        wall = time.perf_counter() - started
        print_run(console, result, wall)
        outputs = []
        if args.out:
            outputs = [(args.out / f"{path.stem}.json", args.out / f"{path.stem}.png")]
        outputs.append((args.json, args.plot))
        for json_path, plot_path in outputs:
            if json_path:
                json_path.parent.mkdir(parents=True, exist_ok=True)
                document = result.to_json() | {"wall_seconds": round(wall, 2), "acceptance": acceptance(result)}
                json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            if plot_path:
                from webapp_scaler_dev.simulation import plot

                plot.plot_run(result, plot_path)
    return 0
