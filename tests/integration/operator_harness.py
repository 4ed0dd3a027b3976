"""What the operator tests share: the operator as a real process with the RBAC of manifests/default/,
the emulator with real session agents as guests, and small helpers to wait and read the cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from emulator.background import run_in_background
from tests.integration.conftest import Kubectl
from webapp_scaler_dev.processes import die_with_parent, stop

# Each VM runs the real session agent with the push source: the test tells each VM how many sessions
# it holds, exactly as an application using the agent's push API would (from outside the VM's network
# namespace, hence --push-allow-remote). The drain token is the VM's own, from the Secret volume the
# operator adds to every VM.
PUSH_AGENT = (
    "{bin}/session-agent --source push --metrics-listen {ip}:9100 --push-stale-after 3600 --push-allow-remote "
    "--drain-token-file {volumes}/webappscaler-drain-token/token"
)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25, what: str = "") -> Any:
    """Poll until `predicate()` is truthy and return its value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


@dataclass
class Cluster:
    """Reading the test cluster through kubectl, as a person would."""

    kubectl: Kubectl
    namespace: str

    def get(self, kind: str, name: str | None = None) -> Any:
        args = ["get", kind, "-n", self.namespace, "-o", "json"]
        if name:
            args.insert(2, name)
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)

    def items(self, kind: str) -> list[dict[str, Any]]:
        return list((self.get(kind) or {"items": []})["items"])

    def vms(self) -> list[dict[str, Any]]:
        return [vm for vm in self.items("virtualmachines") if not vm["metadata"].get("deletionTimestamp")]

    def vm_names(self) -> list[str]:
        return sorted(vm["metadata"]["name"] for vm in self.vms())

    def was(self, name: str = "shop") -> dict[str, Any]:
        return dict(self.get("webappscaling", name))

    def condition(self, type_: str, name: str = "shop") -> dict[str, Any]:
        for c in (self.was(name).get("status") or {}).get("conditions") or []:
            if c["type"] == type_:
                return dict(c)
        return {}

    def ready_ips(self) -> dict[str, str]:
        ips = {}
        for vmi in self.items("virtualmachineinstances"):
            status = vmi.get("status") or {}
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
            interfaces = status.get("interfaces") or []
            if interfaces and interfaces[0].get("ipAddress") and ready:
                ips[vmi["metadata"]["name"]] = interfaces[0]["ipAddress"]
        return ips

    def vmi_ips(self) -> dict[str, str]:
        ips = {}
        for vmi in self.items("virtualmachineinstances"):
            interfaces = (vmi.get("status") or {}).get("interfaces") or []
            if interfaces and interfaces[0].get("ipAddress"):
                ips[vmi["metadata"]["name"]] = interfaces[0]["ipAddress"]
        return ips

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        events = [e for e in self.items("events") if e["involvedObject"].get("kind") == "WebAppScaling"]
        return [e for e in events if reason is None or e.get("reason") == reason]


def push_sessions(ip: str, count: int) -> None:
    """Tell the agent of the VM at `ip` how many sessions it holds (the agent's push API)."""
    body = json.dumps({"active_sessions": count}).encode()
    request = urllib.request.Request(f"http://{ip}:9100/push", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def agent_drain_request(ip: str, token: str, method: str = "POST") -> int:
    """POST (or DELETE) /drain on the agent at `ip` with this bearer token; the HTTP status."""
    request = urllib.request.Request(
        f"http://{ip}:9100/drain", method=method, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def agent_drain_state(ip: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{ip}:9100/drain", timeout=5) as response:
        return dict(json.loads(response.read()))


@contextmanager
def loopback_emulator(kubeconfig: Path, namespace: str, workdir: Path) -> Iterator[None]:
    """Emulated KubeVirt and CDI for one namespace, quick clones and boots, VMs on loopback addresses:
    for tests of how the operator is installed and run, not of what its VMs serve."""
    with run_in_background(
        kubeconfig,
        workdir=workdir,
        log_path=workdir / "emulator.log",
        namespace=namespace,
        clone_seconds=0.5,
        import_seconds=0.5,
        boot_seconds=0.2,
        probe_period=0.5,
    ):
        yield


def golden_datavolume(name: str = "golden", *, fail: bool = False) -> dict[str, Any]:
    annotations = {"emulator.webappscaler.io/fail": "true"} if fail else {}
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}},
    }


def webappscaling(name: str = "shop", **spec: Any) -> dict[str, Any]:
    """A WebAppScaling tuned for tests: 1 s rounds, short windows, no scale-down stabilization. The guests
    run the push source (PUSH_AGENT), which drains through readiness only: the spec says so."""
    base: dict[str, Any] = {
        "goldenImage": {"name": "golden"},
        "vmTemplate": {
            "metadata": {"labels": {"app": "shop"}},
            "spec": {"domain": {"devices": {}, "memory": {"guest": "1Gi"}}},
        },
        "replicas": {"min": 1, "max": 4},
        "sessions": {
            "targetPerVM": 10,
            "scrapeIntervalSeconds": 1,
            "scrapeTimeoutSeconds": 1,
            "movingAverage": {"kind": "Simple", "windowSeconds": 2},
            "agent": {"source": "push"},
        },
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        "prediction": {"enabled": False},
        "warmPool": {"size": 0},
        "scaleIn": {"drain": {"timeoutSeconds": 600, "mode": "Readiness"}},
        "service": {"port": 80, "targetPort": 8080},
        "ingress": {"enabled": True, "host": "shop.example.test", "className": "nginx"},
    }
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return {"apiVersion": "webappscaler.io/v1alpha1", "kind": "WebAppScaling", "metadata": {"name": name}, "spec": base}


def apply(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finalizer work — a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        stop(self.process, 20)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def operator(
    kubeconfig: Path,
    namespace: str,
    log: Path,
    *,
    metrics_port: int = 0,
    coordination: Sequence[str] = ("--standalone",),
    pod_namespace: str | None = None,
) -> Iterator[OperatorProcess]:
    """`webapp-scaler operator` watching one namespace, as a real process with the operator's RBAC; with
    `metrics_port` it serves its Prometheus metrics on 127.0.0.1 there. `coordination`: how it shares the
    work (`--standalone`, or the leader-election flags, which may also override `--liveness`).
    `pod_namespace`: POD_NAMESPACE as a Deployment's downward API sets it (the Lease's namespace); unset by
    default, so the Lease namespace is the default or the flag's."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    env.pop("POD_NAMESPACE", None)
    if pod_namespace is not None:
        env["POD_NAMESPACE"] = pod_namespace
    argv = [
        sys.executable,
        "-m",
        "webapp_scaler.cli",
        "operator",
        "--namespace",
        namespace,
        "--metrics-port",
        str(metrics_port),
        "--metrics-address",
        "127.0.0.1",
        "--liveness",
        "off",
        "--log-format",
        "plain",
        "--verbose",
        *coordination,
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent()
        )
    handle = OperatorProcess(process, log)
    try:
        yield handle
    finally:
        handle.stop()
