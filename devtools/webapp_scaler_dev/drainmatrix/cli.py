"""`webapp-scaler-dev drain-matrix [--short] [--write docs/load-balancers.md]`: every load balancer × route ×
drain mode across a real scale-in, as a table; `--write` replaces the table in the document (between its
`drain-matrix` markers) and writes the raw figures next to the other benchmark results."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from pathlib import Path

from webapp_scaler_dev.drainmatrix.combinations import (
    ALL,
    SHORT,
    Combination,
    MatrixSettings,
    Outcome,
    markdown_table,
    reasons,
)
from webapp_scaler_dev.drainmatrix.run import as_dict, matrix_bed, run_all

BEGIN = "<!-- drain-matrix:begin (written by `webapp-scaler-dev drain-matrix --write`) -->"
END = "<!-- drain-matrix:end -->"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--short", action="store_true", help="only the supported combinations (what CI runs)")
    parser.add_argument("--only", action="append", default=[], metavar="SLUG", help="e.g. nginx-endpointslices-refuse")
    parser.add_argument("--users", type=int, default=MatrixSettings.users, help="concurrent shoppers per combination")
    parser.add_argument("--parallel", type=int, default=MatrixSettings.parallel, help="combinations at a time")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN", help="replace the table in this document")
    parser.add_argument("--json", type=Path, default=Path("docs/bench/drain-matrix.json"), help="with --write")
    parser.add_argument("--workdir", type=Path, help="logs and state (default: a temporary directory)")


def select(short: bool, only: list[str]) -> list[Combination]:
    chosen = list(SHORT if short else ALL)
    if only:
        known = {c.slug: c for c in ALL}
        unknown = [slug for slug in only if slug not in known]
        if unknown:
            raise SystemExit(f"unknown combination(s) {', '.join(unknown)}; known: {', '.join(known)}")
        chosen = [known[slug] for slug in only]
    return chosen


def section(outcomes: list[Outcome], command: str, seconds: float) -> str:
    return "\n".join(
        [
            BEGIN,
            "",
            f"Measured with `{command}` in {seconds / 60:.0f} min on {platform.node() or 'this machine'}"
            f" ({time.strftime('%Y-%m-%d')}).",
            "",
            markdown_table(outcomes),
            "",
            reasons([o.combination for o in outcomes]),
            "",
            END,
        ]
    )


def write_section(document: Path, text: str) -> None:
    old = document.read_text() if document.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in old or END not in old:
        raise SystemExit(f"{document} has no drain-matrix markers; add\n{BEGIN}\n{END}")
    head, _, rest = old.partition(BEGIN)
    _, _, tail = rest.partition(END)
    document.write_text(head + text + tail)


def run(args: argparse.Namespace) -> int:
    combinations = select(args.short, args.only)
    settings = MatrixSettings(users=args.users, parallel=args.parallel)
    started = time.time()  # wall clock: the figure in the document is the time a reader waits
    with matrix_bed(settings, args.workdir, progress=lambda line: print(f"[drain-matrix] {line}", flush=True)) as bed:
        outcomes = asyncio.run(run_all(bed, combinations))
    seconds = time.time() - started
    print(markdown_table(outcomes))
    if args.write is not None:
        command = "webapp-scaler-dev drain-matrix --write " + str(args.write)
        write_section(args.write, section(outcomes, command, seconds))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([as_dict(o) for o in outcomes], indent=2, default=str) + "\n")
        print(f"wrote {args.write} and {args.json}")
    broken = [o for o in outcomes if o.supported and not o.clean]
    for o in broken:
        print(f"SUPPORTED BUT NOT CLEAN: {o.combination.label}: {o.failure or o.losses or o.error_kinds}")
    return 1 if broken else 0
