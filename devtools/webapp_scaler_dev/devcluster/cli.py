"""`webapp-scaler-dev dev-cluster up|down|env`: a local control plane that outlives the command.

`up` builds the binaries if needed, starts the cluster detached in a fixed directory and prints the
`export KUBECONFIG=…` line; `env` prints it again; `down` stops the processes recorded in `state.json`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rich.console import Console

from webapp_scaler_dev.devcluster.binaries import cache_dir, find_binaries
from webapp_scaler_dev.devcluster.cluster import DevCluster, DevClusterError, attach


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument(
        "--dir",
        type=Path,
        default=cache_dir() / "dev-cluster",
        help="working directory of the cluster (data, certificates, logs, kubeconfig)",
    )


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    workdir: Path = args.dir
    state = workdir / "state.json"
    if args.action == "env":
        if not state.exists():
            console.print(f"[red]no cluster in {workdir}[/]; run `webapp-scaler-dev dev-cluster up`")
            return 1
        print(f"export KUBECONFIG={workdir / 'kubeconfig'}")
        return 0
    if args.action == "down":
        if not state.exists():
            console.print(f"no cluster in {workdir}: nothing to stop")
            return 0
        attach(workdir, find_binaries()).stop()
        shutil.rmtree(workdir, ignore_errors=True)
        console.print("control plane stopped")
        return 0
    if state.exists():
        console.print(f"[yellow]a cluster already runs from {workdir}[/]; `dev-cluster down` first")
        print(f"export KUBECONFIG={workdir / 'kubeconfig'}")
        return 0
    with console.status("building the control plane (cached after the first run)…"):
        binaries = find_binaries(build=True)
    shutil.rmtree(workdir, ignore_errors=True)
    cluster = DevCluster(binaries, workdir=workdir, detach=True, progress=lambda m: console.print(f"· {m}"))
    try:
        cluster.start()
    except DevClusterError as error:
        console.print(f"[red]{error}[/]")
        return 1
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0
