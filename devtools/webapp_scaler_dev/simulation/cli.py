"""`webapp-scaler-dev simulate`: replay traffic traces through our engine and the baselines.

webapp-scaler-dev simulate --trace FILE [--policy NAME]... [--json OUT] [--plot OUT.png] [--seed N]
webapp-scaler-dev simulate --all-traces --out docs/bench          # the full benchmark (make bench)
webapp-scaler-dev simulate --trace FILE --start peak --hours 4    # the quick form CI runs
webapp-scaler-dev simulate --all-traces --seeds 1 2 3 --arrivals random --arrivals even \
    --policy webapp-scaler --policy hpa-drain-tuned --summary docs/bench/matrix.json   # ours vs tuned HPA
webapp-scaler-dev simulate --synthetic flash --synthetic diurnal --seeds 1 2 3 --arrivals random --arrivals even \
    --summary docs/bench/synthetic.json   # seeded synthetic traces (one per shape and seed), every policy
webapp-scaler-dev simulate --synthetic flash --seed 2 --save-traces out/   # also write the generated CSV
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from webapp_scaler_dev.simulation import policies, sessions, synthetic
from webapp_scaler_dev.simulation import run as sim_run
from webapp_scaler_dev.simulation import settings as sim_settings
from webapp_scaler_dev.simulation import trace as traces

# metric -> column header of the printed table
METRICS = {
    "overload_session_minutes": "overload\nsession-min",
    "overload_minutes": "overload\nmin",
    "vm_minutes": "VM-min",
    "cost_vm_minutes": "cost\nVM-min",
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
    what.add_argument(
        "--synthetic",
        action="append",
        choices=synthetic.SHAPES,
        help="a seeded synthetic trace (drawn anew for every seed); repeat for several shapes",
    )
    parser.add_argument("--save-traces", type=Path, help="write every synthetic trace as <name>.csv here")
    parser.add_argument("--traces-dir", type=Path, default=None, help="default: benchmarks/traces")
    parser.add_argument("--policy", action="append", choices=policies.NAMES, help="repeat for several; default: all")
    parser.add_argument("--json", type=Path, help="write the results as JSON (one trace)")
    parser.add_argument("--plot", type=Path, help="write the plot as PNG (one trace)")
    parser.add_argument("--out", type=Path, help="directory for <trace>.json and <trace>.png per trace")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds: the ours-vs-baseline matrix")
    parser.add_argument(
        "--arrivals",
        action="append",
        choices=sessions.ARRIVAL_MODES,
        help=f"how each trace step's users fall inside it; repeat for the matrix (default: {d.arrivals})",
    )
    parser.add_argument("--warm-cost", type=float, default=d.warm_cost, help="a stopped VM's cost per running one")
    parser.add_argument("--visits", choices=sessions.VISIT_LAWS, default=m.visits, help="visit length law")
    parser.add_argument("--tail-index", type=float, default=m.tail_index, help="Lomax shape of --visits heavy")
    parser.add_argument("--no-returns", action="store_true", help="dropped users do not come back")
    parser.add_argument(
        "--engine-spec", default="", help="JSON WebAppScaling spec fragment over our engine's defaults (what-if)"
    )
    parser.add_argument("--summary", type=Path, help="the matrix as JSON (and the same name .md)")
    parser.add_argument("--baseline", default="hpa-drain-tuned", help="what the matrix compares ours with")
    parser.add_argument("--capacity", type=int, default=d.capacity, help="sessions per VM before overload")
    parser.add_argument("--target", type=float, default=d.target_per_vm, help="target sessions per VM")
    parser.add_argument("--boot-time", type=float, default=d.boot_seconds, help="clone + boot seconds")
    parser.add_argument("--peak-vms", type=int, default=d.peak_vms, help="VMs the trace's peak needs at capacity")
    parser.add_argument("--start", help="ISO time or 'peak' (centre the window on the busiest step)")
    parser.add_argument("--hours", type=float, help="simulate only this many hours (after a warm-up)")
    parser.add_argument("--warmup", type=float, default=d.warmup_seconds, help="unscored seconds first")
    parser.add_argument("--idle-timeout", type=float, default=m.idle_timeout_seconds, help="seconds")
    parser.add_argument("--mean-visit", type=float, default=m.mean_visit_seconds, help="seconds")
    parser.add_argument(
        "--max-visit",
        type=float,
        help=f"seconds (default {m.max_visit_seconds:g}; {sessions.HEAVY_MAX_VISIT_SECONDS:g} with --visits heavy)",
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes")


def settings_from(
    args: argparse.Namespace, *, seed: int | None = None, arrivals: sessions.ArrivalMode | None = None
) -> sim_settings.SimulationSettings:
    max_visit = args.max_visit
    if max_visit is None:
        heavy = args.visits == "heavy"
        max_visit = sessions.HEAVY_MAX_VISIT_SECONDS if heavy else sessions.SessionModel().max_visit_seconds
    return sim_settings.SimulationSettings(
        capacity=args.capacity,
        target_per_vm=args.target,
        boot_seconds=args.boot_time,
        peak_vms=args.peak_vms,
        max_replicas=max(sim_settings.SimulationSettings().max_replicas, args.peak_vms * 3),
        warmup_seconds=args.warmup,
        seed=args.seed if seed is None else seed,
        warm_cost=args.warm_cost,
        arrivals=arrivals or (args.arrivals or [sim_settings.SimulationSettings().arrivals])[0],
        dropped_return=not args.no_returns,
        engine_spec=args.engine_spec,
        session_model=sessions.SessionModel(
            idle_timeout_seconds=args.idle_timeout,
            mean_visit_seconds=args.mean_visit,
            max_visit_seconds=max_visit,
            visits=args.visits,
            tail_index=args.tail_index,
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


def acceptance(result: sim_run.Run, baseline: str = "hpa-drain-tuned") -> str:
    """The product's promise on this run against `baseline`, in one line (empty when it did not run)."""
    r = result.results
    if not {"webapp-scaler", baseline} <= r.keys():
        return ""
    return "  ".join(
        f"{'PASS' if ok else 'FAIL'} {what}" for what, ok in goal(r["webapp-scaler"], r[baseline], baseline)
    )


def goal(ours: sim_run.PolicyResult, theirs: sim_run.PolicyResult, baseline: str) -> list[tuple[str, bool]]:
    """The engine's goal against one baseline: no drop, half its overload (none where it has none), and
    at most 0.95 of its cost."""
    o, t = ours.metrics, theirs.metrics
    return [
        ("no session dropped", o["sessions_dropped"] == 0),
        (
            f"overload <= half of {baseline}'s",
            o["overload_session_minutes"] == 0 or o["overload_session_minutes"] <= 0.5 * t["overload_session_minutes"],
        ),
        (f"cost <= 0.95 x {baseline}'s", o["cost_vm_minutes"] <= 0.95 * t["cost_vm_minutes"]),
    ]


def ratio(ours: float, theirs: float) -> float | None:
    """ours / theirs, None when both are zero (nothing to compare), inf when only theirs is."""
    if theirs == 0:
        return None if ours == 0 else math.inf
    return ours / theirs


def matrix_row(result: sim_run.Run, baseline: str) -> dict[str, Any]:
    """One cell of the ours-vs-baseline matrix: both policies' figures, the ratios and the verdicts."""
    ours, theirs = result.results["webapp-scaler"], result.results[baseline]
    row: dict[str, Any] = {
        "trace": result.trace.name,
        "seed": result.settings.seed,
        "arrivals": result.settings.arrivals,
    }
    for key in ("overload_session_minutes", "cost_vm_minutes", "vm_minutes", "sessions_dropped"):
        row[f"ours_{key}"] = ours.metrics[key]
        row[f"{baseline}_{key}"] = theirs.metrics[key]
    row["overload_ratio"] = ratio(ours.metrics["overload_session_minutes"], theirs.metrics["overload_session_minutes"])
    row["cost_ratio"] = ratio(ours.metrics["cost_vm_minutes"], theirs.metrics["cost_vm_minutes"])
    row["goal"] = {what: ok for what, ok in goal(ours, theirs, baseline)}
    row["policies"] = {name: {key: r.metrics[key] for key in SUMMARY_METRICS} for name, r in result.results.items()}
    return row


SUMMARY_METRICS = ("overload_session_minutes", "cost_vm_minutes", "sessions_dropped")


def policy_summary(rows: list[dict[str, Any]], baseline: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every policy against `baseline` per trace family (a file, or a synthetic shape over its seeds):
    the metrics summed over the family's cells, the ratio of the sums to the baseline's, and the range of
    the per-cell ratios."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        cells = [r for r in rows if r["family"] == family]
        theirs = [c["policies"][baseline] for c in cells]
        out[family] = {}
        for name in cells[0]["policies"]:
            mine = [c["policies"][name] for c in cells]
            entry: dict[str, Any] = {"cells": len(cells)}
            for key in SUMMARY_METRICS:
                entry[key] = sum(m[key] for m in mine)
            for key in ("overload_session_minutes", "cost_vm_minutes"):
                short = key.split("_")[0]
                entry[f"{short}_ratio"] = ratio(entry[key], sum(t[key] for t in theirs))
                per_cell = [ratio(m[key], t[key]) for m, t in zip(mine, theirs, strict=True)]
                known = [x for x in per_cell if x is not None]
                entry[f"{short}_ratio_range"] = [min(known), max(known)] if known else None
            out[family][name] = entry
    return out


def policies_markdown(summary: dict[str, dict[str, dict[str, Any]]], baseline: str) -> str:
    """The per-policy summary as Markdown tables, one per trace family."""
    lines: list[str] = []
    for family, table in summary.items():
        cells = next(iter(table.values()))["cells"]
        lines += [
            f"{family} ({cells} cells; sums over them, ratios of the sums to {baseline}'s, per-cell range):",
            "",
            "| policy | overload session-min | ratio | per cell | cost VM-min | ratio | per cell | sessions dropped |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for name, e in table.items():
            spans = []
            for short in ("overload", "cost"):
                span = e[f"{short}_ratio_range"]
                spans.append("–" if span is None else f"{_fmt_ratio(span[0])}–{_fmt_ratio(span[1])}")
            lines.append(
                f"| {name} | {e['overload_session_minutes']:,.0f} | {_fmt_ratio(e['overload_ratio'])} | {spans[0]} "
                f"| {e['cost_vm_minutes']:,.0f} | {_fmt_ratio(e['cost_ratio'])} | {spans[1]} "
                f"| {e['sessions_dropped']:,} |"
            )
        lines.append("")
    return "\n".join(lines)


def _fmt_ratio(value: float | None) -> str:
    return "–" if value is None else "∞" if math.isinf(value) else f"{value:.3f}"


def matrix_markdown(rows: list[dict[str, Any]], baseline: str) -> str:
    """The matrix as a Markdown table (what docs/benchmarks.md shows)."""
    lines = [
        f"| trace | seed | arrivals | overload ours / {baseline} | ratio | cost ours / {baseline} | ratio "
        "| dropped ours / theirs | goal |",
        "|---|--:|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        met = all(r["goal"].values())
        failed = ", ".join(what.split(" ")[0] for what, ok in r["goal"].items() if not ok)
        lines.append(
            f"| {r['trace'].split('_')[0]} | {r['seed']} | {r['arrivals']} "
            f"| {r['ours_overload_session_minutes']:,.0f} / {r[baseline + '_overload_session_minutes']:,.0f} "
            f"| {_fmt_ratio(r['overload_ratio'])} "
            f"| {r['ours_cost_vm_minutes']:,.0f} / {r[baseline + '_cost_vm_minutes']:,.0f} "
            f"| {_fmt_ratio(r['cost_ratio'])} "
            f"| {r['ours_sessions_dropped']:,} / {r[baseline + '_sessions_dropped']:,} "
            f"| {'met' if met else 'not met: ' + failed} |"
        )
    return "\n".join(lines) + "\n"


def print_matrix(console: Console, rows: list[dict[str, Any]], baseline: str) -> None:
    table = Table(title=f"webapp-scaler vs {baseline}", title_justify="left")
    for header in ("trace", "seed", "arrivals", "overload\nours", "overload\ntheirs", "ratio", "cost\nours"):
        table.add_column(header, justify="right")
    for header in ("cost\ntheirs", "ratio", "dropped\nours", "dropped\ntheirs", "goal"):
        table.add_column(header, justify="right")
    for r in rows:
        table.add_row(
            r["trace"].split("_")[0],
            str(r["seed"]),
            r["arrivals"],
            f"{r['ours_overload_session_minutes']:,.0f}",
            f"{r[baseline + '_overload_session_minutes']:,.0f}",
            _fmt_ratio(r["overload_ratio"]),
            f"{r['ours_cost_vm_minutes']:,.0f}",
            f"{r[baseline + '_cost_vm_minutes']:,.0f}",
            _fmt_ratio(r["cost_ratio"]),
            f"{r['ours_sessions_dropped']:,}",
            f"{r[baseline + '_sessions_dropped']:,}",
            "met" if all(r["goal"].values()) else "NOT MET",
        )
    console.print(table)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a run's trace comes from: a CSV file (the same for every seed) or a synthetic shape (drawn
    anew for every seed)."""

    name: str
    path: Path | None = None
    shape: synthetic.Shape | None = None

    @property
    def family(self) -> str:
        return self.shape or self.name

    def load(self, seed: int) -> traces.Trace:
        if self.shape is not None:
            return synthetic.generate(self.shape, seed)
        assert self.path is not None
        return traces.load_trace(self.path)


def sources_from(args: argparse.Namespace) -> list[Source]:
    if args.synthetic:
        return [Source(f"synthetic-{shape}", shape=shape) for shape in dict.fromkeys(args.synthetic)]
    paths = args.trace or sorted((args.traces_dir or default_traces_dir()).glob("*.csv"))
    return [Source(path.stem, path=path) for path in paths]


def run(args: argparse.Namespace) -> int:
    console = Console(width=max(Console().width, 110))
    names = list(dict.fromkeys(args.policy or policies.NAMES))
    sources = sources_from(args)
    if not sources:
        console.print("no trace found")
        return 2
    seeds = args.seeds or [args.seed]
    modes: list[sessions.ArrivalMode] = list(
        dict.fromkeys(args.arrivals or [sim_settings.SimulationSettings().arrivals])
    )
    matrix = len(seeds) > 1 or len(modes) > 1 or args.summary is not None
    if matrix:
        if not {"webapp-scaler", args.baseline} <= set(names):
            console.print(f"the matrix compares webapp-scaler with {args.baseline}: run both")
            return 2
        if args.json or args.plot or args.out:
            console.print("--json/--plot/--out take one seed and one arrival mode; the matrix writes --summary")
            return 2
    elif len(sources) > 1 and (args.json or args.plot):
        console.print("--json/--plot take one trace; use --out DIR for several")
        return 2
    rows: list[dict[str, Any]] = []
    loaded: dict[str, traces.Trace] = {}
    for source in sources:
        for seed in seeds:
            full = loaded.get(source.name) if source.shape is None else None
            if full is None:
                full = source.load(seed)
                if source.shape is None:
                    loaded[source.name] = full
                elif args.save_traces:
                    args.save_traces.mkdir(parents=True, exist_ok=True)
                    (args.save_traces / f"{full.name}.csv").write_text(synthetic.trace_csv(full), encoding="utf-8")
            for mode in modes:
                settings = settings_from(args, seed=seed, arrivals=mode)
                started = time.perf_counter()
                result = simulate_trace(full, settings, names, start=args.start, hours=args.hours, workers=args.workers)
                wall = time.perf_counter() - started
                if matrix:
                    row = matrix_row(result, args.baseline) | {"family": source.family}
                    rows.append(row | {"wall_seconds": round(wall, 2)})
                    console.print(f"{full.name} seed {seed} {mode}: {wall:.1f} s")
                    continue
                print_run(console, result, wall)
                write_outputs(args, full.name, result, wall)
    if matrix:
        print_matrix(console, rows, args.baseline)
        if args.summary:
            document = {"baseline": args.baseline, "settings": _matrix_settings(args), "rows": rows}
            if len(names) > 2:
                document["policies"] = policy_summary(rows, args.baseline)
            args.summary.parent.mkdir(parents=True, exist_ok=True)
            args.summary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            text = matrix_markdown(rows, args.baseline)
            if len(names) > 2:
                text += "\n" + policies_markdown(document["policies"], args.baseline)
            args.summary.with_suffix(".md").write_text(text, encoding="utf-8")
    return 0


def _matrix_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The shared settings of a matrix (seed and arrivals vary per row)."""
    s = settings_from(args)
    return {
        "capacity": s.capacity,
        "target_per_vm": s.target_per_vm,
        "boot_seconds": s.boot_seconds,
        "peak_vms": s.peak_vms,
        "warm_cost": s.warm_cost,
        "dropped_return": s.dropped_return,
        "engine_spec": s.engine_spec,
        "drain_timeout_seconds": s.drain_timeout_seconds,
        "session_model": dataclasses.asdict(s.session_model),
        "longest_session_seconds": s.session_model.max_lifetime_seconds,
        "start": args.start,
        "hours": args.hours,
    }


def write_outputs(args: argparse.Namespace, name: str, result: sim_run.Run, wall: float) -> None:
    outputs = []
    if args.out:
        outputs = [(args.out / f"{name}.json", args.out / f"{name}.png")]
    outputs.append((args.json, args.plot))
    for json_path, plot_path in outputs:
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            document = result.to_json() | {"wall_seconds": round(wall, 2), "acceptance": acceptance(result)}
            json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        if plot_path:
            from webapp_scaler_dev.simulation import plot

            plot.plot_run(result, plot_path)
