"""Reaction benchmark: from an agent's session count crossing the target to the VM create request.

A real control plane, the emulator, a real session agent per VM and the operator as its own process.
Each trial pushes a count above the target to the single ready VM's agent and times, on this machine's
clock, the moment the API server's watch delivers the new VirtualMachine (the create request has been
accepted by then, so this over-states the operator's part by the watch delivery, a few ms). Then the
count goes back below the target, the extra VM drains (it holds no session) and is deleted, and the
next trial starts.

    python benchmarks/reaction.py [--trials 20] [--scrape-interval 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from rich.console import Console
from rich.table import Table

import emulator
from emulator.background import run_in_background
from webapp_scaler_dev.devcluster import DevCluster, find_binaries
from webapp_scaler_dev.processes import die_with_parent, stop

REPO = Path(__file__).resolve().parents[1]

NAMESPACE = "reaction"
TARGET = 10


def webappscaling(interval: int) -> dict[str, Any]:
    return {
        "apiVersion": "webappscaler.io/v1alpha1",
        "kind": "WebAppScaling",
        "metadata": {"name": "shop", "namespace": NAMESPACE},
        "spec": {
            "goldenImage": {"name": "golden"},
            "vmTemplate": {"spec": {"domain": {"devices": {}}}},
            "replicas": {"min": 1, "max": 10},
            "sessions": {
                "targetPerVM": TARGET,
                "scrapeIntervalSeconds": interval,
                "scrapeTimeoutSeconds": interval,
                "movingAverage": {"kind": "Simple", "windowSeconds": interval},
            },
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "prediction": {"enabled": False},
            "warmPool": {"size": 0},  # the trigger must clone, not start a stopped VM
        },
    }


def push(ip: str, count: int) -> None:
    request = urllib.request.Request(
        f"http://{ip}:9100/push", data=json.dumps({"active_sessions": count}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=5).close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--scrape-interval", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    console = Console(stderr=True)
    work = Path(tempfile.mkdtemp(prefix="webapp-scaler-reaction-"))

    with console.status("starting the control plane"):
        cluster = DevCluster(find_binaries(build=True), workdir=work / "cluster")
        cluster.start()
    try:
        cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"), "-f", str(emulator.CRDS_DIR))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all")
        cluster.kubectl("create", "namespace", NAMESPACE)
        golden = {
            "apiVersion": "cdi.kubevirt.io/v1beta1",
            "kind": "DataVolume",
            "metadata": {"name": "golden", "namespace": NAMESPACE},
            "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}},
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([golden, webappscaling(args.scrape_interval)]))
        kubernetes.config.load_kube_config(str(cluster.kubeconfig))
        api = kubernetes.client.CustomObjectsApi()
        # pushed from outside the VM's network namespace, hence --push-allow-remote
        guest = "{bin}/session-agent --source push --metrics-listen {ip}:9100 --push-stale-after 3600"
        guest += " --push-allow-remote"
        with run_in_background(
            cluster.kubeconfig,
            workdir=work / "emulator",
            log_path=work / "emulator.log",
            clone_seconds=0.5,
            import_seconds=0.2,
            boot_seconds=0.3,
            probe_period=0.3,
            guest_command=[guest],
            guest_port=[9100],
            network="netns",  # the operator talks only to addresses a virt-launcher pod confirms
        ):
            env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
            argv = [sys.executable, "-m", "webapp_scaler.cli", "operator", "--standalone", "-n", NAMESPACE]
            argv += ["--metrics-port", "0", "--liveness", "off", "--log-format", "plain"]
            with (work / "operator.log").open("ab") as log:
                operator = subprocess.Popen(argv, env=env, stdout=log, stderr=log, preexec_fn=die_with_parent())
            try:
                latencies = run_trials(api, args.trials, console)
            finally:
                stop(operator, 20)
    finally:
        cluster.stop()

    figures = {
        "scrape_interval_seconds": args.scrape_interval,
        "moving_average_window_seconds": args.scrape_interval,
        "trials": len(latencies),
        "p50_seconds": round(statistics.median(latencies), 3),
        "p99_seconds": round(percentile(latencies, 0.99), 3),
        "min_seconds": round(min(latencies), 3),
        "max_seconds": round(max(latencies), 3),
    }
    table = Table(title="session count crosses the target → VM create request")
    for column in ("scrape interval", "trials", "p50", "p99", "min", "max"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{args.scrape_interval} s",
        str(len(latencies)),
        *(f"{figures[k] * 1000:.0f} ms" for k in ("p50_seconds", "p99_seconds", "min_seconds", "max_seconds")),
    )
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def vm_watch(api: kubernetes.client.CustomObjectsApi, events: queue.Queue[tuple[float, str, str]]) -> None:
    watch = kubernetes.watch.Watch()
    stream = watch.stream(
        api.list_namespaced_custom_object, "kubevirt.io", "v1", NAMESPACE, "virtualmachines", timeout_seconds=3600
    )
    try:
        for event in stream:
            events.put((time.time(), event["type"], event["object"]["metadata"]["name"]))
    except Exception:  # the control plane stopped at the end of the run
        return


def ready_ips() -> dict[str, str]:
    core = kubernetes.client.CustomObjectsApi()
    out = {}
    for vmi in core.list_namespaced_custom_object("kubevirt.io", "v1", NAMESPACE, "virtualmachineinstances")["items"]:
        status = vmi.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        if ready and status.get("interfaces"):
            out[vmi["metadata"]["name"]] = status["interfaces"][0]["ipAddress"]
    return out


def vm_names(api: kubernetes.client.CustomObjectsApi) -> set[str]:
    items = api.list_namespaced_custom_object("kubevirt.io", "v1", NAMESPACE, "virtualmachines")["items"]
    return {vm["metadata"]["name"] for vm in items if not vm["metadata"].get("deletionTimestamp")}


def wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)
    return value


def steady(api: kubernetes.client.CustomObjectsApi) -> dict[str, str] | None:
    ips = ready_ips()
    return ips if len(ips) == 1 and set(ips) == vm_names(api) else None


def run_trials(api: kubernetes.client.CustomObjectsApi, trials: int, console: Console) -> list[float]:
    events: queue.Queue[tuple[float, str, str]] = queue.Queue()
    threading.Thread(target=vm_watch, args=(api, events), daemon=True).start()
    latencies = []
    for trial in range(trials):
        # a steady state: exactly one VM, ready, below target, for a few rounds
        [(vm, ip)] = wait(lambda: steady(api), 120, "one ready VM").items()
        push(ip, TARGET // 2)
        time.sleep(2.5)
        while not events.empty():
            events.get_nowait()
        crossed = time.time()
        push(ip, TARGET + 5)
        while True:
            at, kind, name = events.get(timeout=60)
            if kind == "ADDED" and name != vm:
                break
        latencies.append(at - crossed)
        console.print(f"trial {trial + 1}/{trials}: {latencies[-1] * 1000:.0f} ms")
        push(ip, TARGET // 2)  # the new VM holds nothing: it drains at once and goes
    return latencies


if __name__ == "__main__":
    sys.exit(main())
