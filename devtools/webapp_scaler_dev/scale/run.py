"""One scale run: a real control plane, the light emulator, the agent farm, N WebAppScalings of M VMs and
the operator as its own process; cold start, a steady phase with rises, an operator restart; figures.

The operator talks to the apiserver as a user of its own, and the apiserver writes an audit line for each
of that user's requests (and nobody else's): its requests by verb and resource, its VM creates and its
status patches are counted there, exactly, apart from the emulator's and the benchmark's own traffic.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

import emulator
from emulator.background import run_in_background
from webapp_scaler_dev.devcluster import DevCluster, find_binaries
from webapp_scaler_dev.processes import die_with_parent, free_port, operator_process, stop
from webapp_scaler_dev.scale import measure
from webapp_scaler_dev.scale.netns import VM_SUBNET, farm_namespace

REPO = Path(__file__).resolve().parents[3]
OPERATOR_USER = "webapp-scaler-operator"
OBJECTS_PER_NAMESPACE = 100
TARGET = 10
GROUP, VERSION, PLURAL = "webappscaler.io", "v1alpha1", "webappscalings"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["ResponseStarted", "ResponseComplete", "Panic"],  # one line per request, when received
    "rules": [{"level": "Metadata", "users": [OPERATOR_USER]}, {"level": "None"}],
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScaleSettings:
    objects: int
    vms_per_object: int
    scrape_interval_s: int = 15
    minutes: float = 10.0
    """Length of the steady phase (the rises)."""
    step_vms: int = 2
    """VMs an object's rise is worth."""
    period_s: float = 600.0
    hold_s: float = 240.0
    ramp_s: float = 300.0
    """From 0 to the base load after the objects are created: slow enough for the forecast to follow."""
    cold_timeout_s: float = 3600.0
    restart_timeout_s: float = 900.0
    profile: Path | None = None
    """py-spy's raw (collapsed) stacks of the operator during the steady phase, written here."""
    workdir: Path | None = None
    keep_workdir: bool = False

    @property
    def vms(self) -> int:
        return self.objects * self.vms_per_object

    @property
    def base_sessions(self) -> int:
        """Nine tenths of the minimum fleet's capacity: the fleet stays at its minimum."""
        return self.vms_per_object * TARGET * 9 // 10

    @property
    def high_sessions(self) -> int:
        """Just under the capacity of `step_vms` more VMs: a rise is worth exactly that many."""
        return (self.vms_per_object + self.step_vms) * TARGET * 19 // 20


def object_names(settings: ScaleSettings) -> list[tuple[str, str]]:
    return [(f"scale-{i // OBJECTS_PER_NAMESPACE:03d}", f"app-{i:04d}") for i in range(settings.objects)]


def webappscaling(namespace: str, name: str, settings: ScaleSettings) -> dict[str, Any]:
    """The defaults wherever the benchmark does not need another value: no warm pool (a rise clones, so
    it shows as a create), room above the minimum for the rises."""
    interval = settings.scrape_interval_s
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WebAppScaling",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "goldenImage": {"name": "golden"},
            "vmTemplate": {"spec": {"domain": {"devices": {}}}},
            "replicas": {"min": settings.vms_per_object, "max": settings.vms_per_object + settings.step_vms + 3},
            "sessions": {
                "targetPerVM": TARGET,
                "scrapeIntervalSeconds": interval,
                "movingAverage": {"kind": "Simple", "windowSeconds": max(interval, 60)},
            },
            "warmPool": {"size": 0},
        },
    }


@dataclass
class VMWatch:
    """The benchmark's own view of the VMs: who owns which, and how many there are."""

    api: client.ApiClient
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    first_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    live: set[tuple[str, str]] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="vm-watch").start()

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)

        def listing(**kwargs: Any) -> Any:
            return custom.list_cluster_custom_object(
                "kubevirt.io", "v1", "virtualmachines", label_selector=f"{GROUP}/scaling", **kwargs
            )

        while not self.stop.is_set():
            try:
                listed = listing()
                self.live = set()
                for item in listed["items"]:
                    self._saw("ADDED", item)
                version = listed["metadata"]["resourceVersion"]
                while not self.stop.is_set():
                    for event in watch.Watch().stream(listing, resource_version=version, timeout_seconds=30):  # type: ignore[no-untyped-call]
                        if event["type"] == "ERROR":
                            raise RuntimeError(str(event["object"]))
                        version = event["object"]["metadata"]["resourceVersion"]
                        self._saw(event["type"], event["object"])
            except Exception:  # relist
                self.stop.wait(1.0)

    def _saw(self, kind: str, vm: dict[str, Any]) -> None:
        meta = vm["metadata"]
        key = (meta["namespace"], meta["name"])
        self.first_seen.setdefault(key, time.time())
        self.owners[key] = meta.get("labels", {}).get(f"{GROUP}/scaling", "")
        if kind == "DELETED":
            self.live.discard(key)
        else:
            self.live.add(key)


@dataclass
class Sampler:
    """The operator process's CPU seconds and RSS, once a second, from /proc."""

    samples: list[measure.Sample] = field(default_factory=list)
    pid: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    _base: float = 0.0

    def follow(self, pid: int) -> None:
        """A new operator process: its CPU seconds continue the previous one's count."""
        if self.samples:
            self._base = self.samples[-1].cpu_seconds
        self.pid = pid

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="sampler").start()

    def _run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.stop.wait(1.0):
            pid = self.pid
            if pid is None:
                continue
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            self.samples.append(measure.Sample(time.time(), self._base + cpu, rss_pages * page))


class Farm:
    def __init__(self, workdir: Path, settings: ScaleSettings, netns: str) -> None:
        self.port = free_port()
        self.rounds = workdir / "rounds.jsonl"
        plan = {
            "objects": object_names(settings),
            "base": settings.base_sessions,
            "high": settings.high_sessions,
            "period_s": settings.period_s,
            "hold_s": settings.hold_s,
            "ramp_s": settings.ramp_s,
        }
        (workdir / "plan.json").write_text(json.dumps(plan))
        argv = [sys.executable, "-m", "webapp_scaler_dev.scale.farm"]
        argv += ["--plan", str(workdir / "plan.json"), "--rounds", str(self.rounds)]
        argv += ["--netns", netns, "--control-port", str(self.port)]
        self.log = workdir / "farm.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent()
            )
        deadline = time.monotonic() + 120
        while b"agent farm ready" not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the agent farm did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def plan(self, **changes: float | None) -> None:
        self._call("POST", "/plan", changes)

    def stats(self, since: float = float("inf")) -> dict[str, Any]:
        return self._call("GET", f"/stats?since={since}")

    def close(self) -> None:
        stop(self.process, 30)  # SIGTERM: the open rounds are written


def _wait(what: str, check: Callable[[], bool], timeout: float, progress: Progress, every: float = 2.0) -> float:
    """Seconds until `check()` holds; TimeoutError after `timeout`."""
    started = time.monotonic()
    last_report = started
    while not check():
        now = time.monotonic()
        if now - started > timeout:
            raise TimeoutError(f"{what}: not reached in {timeout:.0f} s")
        if now - last_report > 30:
            progress(f"  … {what}: {now - started:.0f} s")
            last_report = now
        time.sleep(every)
    return time.monotonic() - started


def _statuses(custom: client.CustomObjectsApi) -> list[dict[str, Any]]:
    listed: Any = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    return list(listed["items"])


def _current(items: list[dict[str, Any]], settings: ScaleSettings, count: int) -> bool:
    """Every object's status is of its current generation and shows its minimum fleet ready."""
    if len(items) < count:
        return False
    for item in items:
        status = item.get("status") or {}
        if status.get("observedGeneration") != item["metadata"]["generation"]:
            return False
        if status.get("readyReplicas") != settings.vms_per_object or status.get("replicas") != settings.vms_per_object:
            return False
    return True


def _settled(items: list[dict[str, Any]]) -> bool:
    """Nothing in flight: every object has what it wants, all ready, nothing draining."""
    for item in items:
        status = item.get("status") or {}
        wanted = status.get("desiredReplicas")
        if wanted is None or status.get("replicas") != wanted or status.get("readyReplicas") != wanted:
            return False
        if status.get("drainingReplicas"):
            return False
    return True


@contextlib.contextmanager
def _workdir(settings: ScaleSettings) -> Iterator[Path]:
    if settings.workdir is not None:
        settings.workdir.mkdir(parents=True, exist_ok=True)
        yield settings.workdir
        return
    path = Path(tempfile.mkdtemp(prefix="webapp-scaler-scale-"))
    try:
        yield path
    finally:
        if not settings.keep_workdir:
            shutil.rmtree(path, ignore_errors=True)


def run(settings: ScaleSettings, progress: Progress) -> dict[str, Any]:
    with _workdir(settings) as workdir, contextlib.ExitStack() as stack:
        return _run(settings, workdir, stack, progress)


def _run(settings: ScaleSettings, workdir: Path, stack: contextlib.ExitStack, progress: Progress) -> dict[str, Any]:
    audit = workdir / "audit.jsonl"
    (workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
    progress("control plane (etcd, kube-apiserver with an audit log of the operator's requests, controller-manager)")
    cluster = DevCluster(
        find_binaries(build=True),
        workdir=workdir / "cluster",
        users=(OPERATOR_USER,),
        apiserver_args=(
            f"--audit-policy-file={workdir / 'audit-policy.yaml'}",
            f"--audit-log-path={audit}",
            "--audit-log-format=json",
            "--audit-log-mode=batch",
            "--audit-log-maxsize=0",
            "--max-requests-inflight=800",
            "--max-mutating-requests-inflight=400",
        ),
    )
    cluster.start()
    stack.callback(cluster.stop)
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"), "-f", str(emulator.CRDS_DIR))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all")
    api = config.new_client_from_config(str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    stack.callback(api.close)
    custom = client.CustomObjectsApi(api)
    objects = object_names(settings)
    namespaces = sorted({ns for ns, _ in objects})
    progress(f"{len(namespaces)} namespace(s), a golden DataVolume in each")
    for ns in ["webapp-scaler", *namespaces]:  # the first: where the operator keeps its Lease, as installed
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    for ns in namespaces:
        golden = {
            "apiVersion": "cdi.kubevirt.io/v1beta1",
            "kind": "DataVolume",
            "metadata": {"name": "golden", "namespace": ns},
            "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}},
        }
        custom.create_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", ns, "datavolumes", golden)

    netns = stack.enter_context(farm_namespace())
    progress(f"agent farm: {settings.vms} VMs' session agents in one process")
    farm = Farm(workdir, settings, netns)
    stack.callback(farm.close)
    progress(f"emulated KubeVirt + CDI, light mode (objects only), VM addresses in {VM_SUBNET}")
    (workdir / "tmp").mkdir(exist_ok=True)
    stack.enter_context(
        run_in_background(
            cluster.kubeconfig,
            log_path=workdir / "emulator.log",
            env={"TMPDIR": str(workdir / "tmp")},  # an address cursor of its own
            light=True,
            network="served",
            served_subnet=VM_SUBNET,
            served_announce=f"http://127.0.0.1:{farm.port}/vms",  # each VM's address, before the VMI shows it
            workdir=workdir / "emulator",
            clone_seconds=2.0,
            import_seconds=1.0,
            boot_seconds=1.0,
            workers=8,
            ready_timeout=300,
        )
    )
    for ns in namespaces:
        cluster.kubectl(
            "wait", "-n", ns, "--for=jsonpath={.status.phase}=Succeeded", "--timeout=300s", "datavolume/golden"
        )
    vms = VMWatch(api)
    vms.start()
    stack.callback(vms.stop.set)
    sampler = Sampler()
    sampler.start()
    stack.callback(sampler.stop.set)

    operator_kubeconfig = cluster.kubeconfig_for(OPERATOR_USER)
    operator_log = workdir / "operator.log"

    def start_operator() -> subprocess.Popen[bytes]:
        process = operator_process(operator_kubeconfig, operator_log, metrics_port=free_port())
        sampler.follow(process.pid)
        return process

    holder: dict[str, subprocess.Popen[bytes]] = {"operator": start_operator()}
    stack.callback(lambda: stop(holder["operator"], 30))

    # ---- cold start ------------------------------------------------------------------------------
    progress(f"cold start: {settings.objects} WebAppScalings × {settings.vms_per_object} VMs")
    t_cold = time.time()
    farm.plan(ramp_from=t_cold)
    for ns, name in objects:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, webappscaling(ns, name, settings))
    cold_vms_s = _wait(
        "every minimum VM created", lambda: len(vms.live) >= settings.vms, settings.cold_timeout_s, progress
    )
    cold_status_s = cold_vms_s + _wait(
        "every status current",
        lambda: _current(_statuses(custom), settings, settings.objects),
        settings.cold_timeout_s,
        progress,
    )
    progress(f"  all {settings.vms} VMs created in {cold_vms_s:.1f} s, every status current in {cold_status_s:.1f} s")

    # ---- steady phase: the rises -------------------------------------------------------------------
    if time.time() < t_cold + settings.ramp_s:
        progress(f"  the load ramps up to its base until {settings.ramp_s:.0f} s after the creates")
        time.sleep(t_cold + settings.ramp_s - time.time())
    t_steady = time.time()
    farm.plan(steps_from=t_steady)
    rises = f"{settings.step_vms} VMs each, every {settings.period_s:g} s per object"
    progress(f"steady phase: {settings.minutes:g} min of rises ({rises})")
    spy: subprocess.Popen[bytes] | None = None
    if settings.profile is not None:
        spy = _start_profile(holder["operator"].pid, settings.profile, settings.minutes * 60)
    time.sleep(settings.minutes * 60)
    t_steady_end = time.time()
    if spy is not None:
        spy.wait(120)

    # ---- restart ---------------------------------------------------------------------------------
    farm.plan(frozen_at=time.time())
    progress("restart: the load frozen, waiting for the fleets to settle")
    with contextlib.suppress(TimeoutError):
        _wait("every fleet settled", lambda: _settled(_statuses(custom)), 600, progress, every=5.0)
    # a still fleet: the status patches once the trend has settled too (its forecast moves for minutes
    # after the last change, and each move of half a session is a change worth writing)
    time.sleep(8 * settings.scrape_interval_s)
    t_still = time.time()
    time.sleep(4 * settings.scrape_interval_s)
    t_still_end = time.time()
    vm_count_before = len(vms.live)
    stop(holder["operator"], 30)
    t_restart = time.time()
    holder["operator"] = start_operator()
    restart_s = _wait(
        "every object scraped by the new operator",
        lambda: farm.stats(since=t_restart)["objects_scraped_since"] >= settings.objects,
        settings.restart_timeout_s,
        progress,
        every=0.5,
    )
    progress(f"  every object back under control {restart_s:.1f} s after the restart (farm's view)")
    time.sleep(2 * settings.scrape_interval_s)
    t_end = time.time()
    vm_count_after = len(vms.live)
    farm_stats = farm.stats()
    stop(holder["operator"], 30)
    farm.close()
    time.sleep(1.5)  # the audit log's batch is flushed

    # ---- figures ---------------------------------------------------------------------------------
    requests = measure.read_audit(audit, OPERATOR_USER)
    rounds = measure.read_rounds(farm.rounds)
    steady = [r for r in rounds if t_steady <= r.first < t_steady_end]
    creates = [r for r in requests if r.verb == "create" and r.resource == "virtualmachines.kubevirt.io"]
    new_vms = [(at, key[0], vms.owners[key]) for key, at in vms.first_seen.items() if t_steady <= at < t_steady_end]
    latencies = measure.decision_latencies(new_vms, rounds)
    restart_rounds = measure.restart_convergence(rounds, objects, t_restart)
    cpu_avg, cpu_peak_steady = measure.cpu_cores(sampler.samples, t_steady, t_steady_end)
    _, cpu_peak = measure.cpu_cores(sampler.samples, t_cold, t_end)
    rss = max((s.rss_bytes for s in sampler.samples), default=0)
    rates = measure.requests_per_second(requests, t_steady, t_steady_end)
    span = t_steady_end - t_steady
    status_patches = sum(
        1
        for r in requests
        if t_steady <= r.at < t_steady_end and r.verb == "patch" and r.resource.startswith(PLURAL + "/status")
    )
    steady_lists = {k: v for k, v in rates.items() if k.startswith("list ")}
    still_patches = sum(
        1
        for r in requests
        if t_still <= r.at < t_still_end and r.verb == "patch" and r.resource.startswith(PLURAL + "/status")
    )
    still_rounds = sum(1 for r in rounds if t_still <= r.first < t_still_end)
    figures: dict[str, Any] = {
        "objects": settings.objects,
        "vms": settings.vms,
        "vms_per_object": settings.vms_per_object,
        "scrape_interval_s": settings.scrape_interval_s,
        "steady_minutes": settings.minutes,
        "cold_start_vms_s": round(cold_vms_s, 1),
        "cold_start_status_s": round(cold_status_s, 1),
        "restart_convergence_s": None if restart_rounds is None else round(restart_rounds, 1),
        "restart_vms_before_after": [vm_count_before, vm_count_after],
        "scrape_round_s": measure.summary([r.last - r.first for r in steady]),
        "scrape_rounds_per_s": round(len(steady) / span, 2),
        "decision_latency_s": measure.summary(latencies),
        "decision_latency_p50_s": measure.summary(latencies)["p50"],
        "decision_latency_p99_s": measure.summary(latencies)["p99"],
        "cpu_cores_avg": None if cpu_avg is None else round(cpu_avg, 3),
        "cpu_cores_peak_steady": None if cpu_peak_steady is None else round(cpu_peak_steady, 3),
        "cpu_cores_peak": None if cpu_peak is None else round(cpu_peak, 3),
        "rss_mib_max": round(rss / 2**20, 1),
        "apiserver_requests_per_s": rates,
        "apiserver_requests_per_s_total": round(sum(rates.values()), 2),
        "steady_list_requests_per_s": steady_lists,
        "status_patches_per_s": round(status_patches / span, 3),
        "status_patches_per_round": round(status_patches / max(len(steady), 1), 3),
        "status_patches_per_round_still": round(still_patches / max(still_rounds, 1), 3),
        "vm_creates_steady": sum(1 for c in creates if t_steady <= c.at < t_steady_end),
        "farm": farm_stats,
        "settings": {
            "step_vms": settings.step_vms,
            "period_s": settings.period_s,
            "hold_s": settings.hold_s,
            "base_sessions": settings.base_sessions,
            "high_sessions": settings.high_sessions,
            "target_per_vm": TARGET,
            "cpus": os.cpu_count(),
        },
    }
    if settings.profile is not None:
        figures["profile"] = str(settings.profile)
    return figures


def _start_profile(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return None
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50"]
    argv += ["--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent(signal.SIGINT)
    )
