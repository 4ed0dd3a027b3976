"""`webapp-scaler-dev chaos crash|outage`: faults against the demo stack, the figures as JSON.

crash: the operator SIGKILLed `--kills` times at seeded moments (crash.py). outage: kube-apiserver and
etcd stopped for `--seconds` under a running operator, then started again (outage.py). Both exit 1 on
any violated invariant or lost session, so a script can run them as a check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from webapp_scaler_dev.chaos.bed import CHAOS_STACK
from webapp_scaler_dev.demo.stack import DemoStack


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fault", required=True, metavar="FAULT")
    crash = sub.add_parser("crash", help="SIGKILL the operator at seeded moments while shoppers hold sessions")
    crash.add_argument("--kills", type=int, default=50)
    crash.add_argument("--seed", type=int, default=1)
    outage = sub.add_parser("outage", help="stop kube-apiserver and etcd under the running operator")
    outage.add_argument("--seconds", type=float, default=60.0, help="how long the control plane is down")
    outage.add_argument("--seed", type=int, default=1)
    for p in (crash, outage):
        p.add_argument("--json", type=Path, help="write the figures here")
        p.add_argument("--workdir", type=Path, help="keep the stack's logs here (default: a temporary dir)")


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0 or shutil.which("haproxy") is None:
        print("chaos needs root (a network namespace per VM) and haproxy (make system-packages)", file=sys.stderr)
        return 2

    def step(what: str) -> Any:
        print(f"• {what}", flush=True)
        import contextlib

        return contextlib.nullcontext()

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with DemoStack(CHAOS_STACK, step, workdir=args.workdir, keep_workdir=args.workdir is not None) as stack:
        if args.fault == "crash":
            from webapp_scaler_dev.chaos.crash import CrashSettings, run_crashes

            figures = asyncio.run(run_crashes(stack, CrashSettings(kills=args.kills, seed=args.seed)))
        else:
            from webapp_scaler_dev.chaos.outage import OutageSettings, run_outage

            figures = asyncio.run(run_outage(stack, OutageSettings(seconds=args.seconds, seed=args.seed)))
    text = json.dumps(figures, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print(text)
    return 0 if not figures["violations"] and figures["sessions"]["sessions_lost"] == 0 else 1
