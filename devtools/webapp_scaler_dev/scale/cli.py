"""`benchmarks/scale.py`: run the scale benchmark once, or plot the figures of several runs against N."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from webapp_scaler_dev.scale.run import ScaleSettings, run

ROWS = (
    ("cold start: every minimum VM created (s)", "cold_start_vms_s"),
    ("cold start: every status current (s)", "cold_start_status_s"),
    ("restart convergence (s)", "restart_convergence_s"),
    ("scrape round p50 / p99 (s)", ("scrape_round_s", "p50", "p99")),
    ("decision latency p50 / p99 (s)", ("decision_latency_s", "p50", "p99")),
    ("operator CPU average / peak (cores)", ("cpu_cores_avg", "cpu_cores_peak")),
    ("operator RSS max (MiB)", "rss_mib_max"),
    ("apiserver requests/s (operator's)", "apiserver_requests_per_s_total"),
    ("list requests/s in the steady phase", "steady_list_requests_per_s"),
    ("status patches/s", "status_patches_per_s"),
    ("status patches per scrape round", "status_patches_per_round"),
    ("… of a still fleet (load frozen, settled)", "status_patches_per_round_still"),
)


def cell(figures: dict[str, Any], spec: str | tuple[str, ...]) -> str:
    if isinstance(spec, str):
        value = figures.get(spec)
        if isinstance(value, dict):
            return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        return "—" if value is None else str(value)
    if isinstance(figures.get(spec[0]), dict):
        inner = figures[spec[0]]
        return " / ".join(str(inner.get(k)) for k in spec[1:])
    return " / ".join(str(figures.get(k)) for k in spec)


def table(figures: dict[str, Any]) -> Table:
    t = Table(title=f"{figures['objects']} WebAppScalings × {figures['vms_per_object']} VMs, one operator replica")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for label, spec in ROWS:
        t.add_row(label, cell(figures, spec))
    return t


def plot(paths: Sequence[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted((json.loads(p.read_text()) for p in paths), key=lambda f: f["objects"])
    n = [f["objects"] for f in runs]
    panels: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
        ("cold start, every status current (s)", lambda f: f["cold_start_status_s"]),
        ("restart convergence (s)", lambda f: f["restart_convergence_s"]),
        ("decision latency p99 (s)", lambda f: f["decision_latency_s"]["p99"]),
        ("scrape round p99 (s)", lambda f: f["scrape_round_s"]["p99"]),
        ("operator CPU average (cores)", lambda f: f["cpu_cores_avg"]),
        ("operator RSS max (MiB)", lambda f: f["rss_mib_max"]),
        ("operator's apiserver requests/s", lambda f: f["apiserver_requests_per_s_total"]),
        ("status patches/s", lambda f: f["status_patches_per_s"]),
    )
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, (title, get) in zip(axes.flat, panels, strict=True):
        ax.plot(n, [get(f) for f in runs], marker="o")
        ax.set_xscale("log")
        ax.set_xlabel("WebAppScalings (10 VMs each)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    fig.suptitle("One operator replica: figures against the number of WebAppScalings")
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/scale.py", description=__doc__)
    p.add_argument("--objects", type=int, help="WebAppScalings (N)")
    p.add_argument("--vms-per-object", type=int, default=10, help="VMs of each (M, its minimum)")
    p.add_argument("--scrape-interval", type=int, default=15, help="spec.sessions.scrapeIntervalSeconds")
    p.add_argument("--minutes", type=float, default=10.0, help="steady phase: rises and falls")
    p.add_argument("--period", type=float, default=600.0, help="seconds between two rises of one object")
    p.add_argument("--hold", type=float, default=240.0, help="seconds a rise lasts")
    p.add_argument("--ramp", type=float, default=300.0, help="seconds the load takes from 0 to its base")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--profile", type=Path, help="py-spy's collapsed stacks of the operator (steady phase)")
    p.add_argument("--workdir", type=Path, help="keep every log here (default: a temporary directory)")
    p.add_argument("--plot", nargs="+", type=Path, metavar="JSON", help="plot these runs' figures against N, no run")
    p.add_argument("--out", type=Path, default=Path("docs/bench/scale.png"), help="the plot (with --plot)")
    args = p.parse_args(argv)
    console = Console(stderr=True)
    if args.plot:
        plot(args.plot, args.out)
        console.print(f"wrote {args.out}")
        return 0
    if not args.objects:
        p.error("--objects is required (or --plot)")
    settings = ScaleSettings(
        objects=args.objects,
        vms_per_object=args.vms_per_object,
        scrape_interval_s=args.scrape_interval,
        minutes=args.minutes,
        period_s=args.period,
        hold_s=args.hold,
        ramp_s=args.ramp,
        profile=args.profile,
        workdir=args.workdir,
    )
    figures = run(settings, lambda message: console.print(f"[bold]»[/bold] {message}"))
    Console().print(table(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
