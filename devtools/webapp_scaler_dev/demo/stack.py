"""The demo stack, brought up step by step and torn down in reverse, whatever happens in between.

control plane → CRDs → namespace → golden DataVolume → emulated KubeVirt/CDI (a network namespace per VM
when root) → the operator → the WebAppScaling → HAProxy following the Service's endpoints.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

import emulator
from emulator.background import RunningEmulator, run_in_background
from webapp_scaler_dev.demo.loadbalancer import (
    Backend,
    EndpointSliceWatcher,
    HAProxy,
    LoadBalancerSettings,
    VMIWatcher,
)
from webapp_scaler_dev.devcluster import DevCluster, find_binaries
from webapp_scaler_dev.processes import die_with_parent, free_port, stop

REPO = Path(__file__).resolve().parents[3]
NAME = "webshop"
GOLDEN = REPO / "manifests" / "examples" / "01-golden-image.yaml"
AGENT_PORT = 8080

Step = Callable[[str], contextlib.AbstractContextManager[None]]


@dataclass(frozen=True)
class StackSettings:
    """The knobs of the demo stack, tuned so that a scale-out and a scale-in fit in a few minutes."""

    namespace: str = "demo"
    target_per_vm: int = 20
    min_vms: int = 1
    max_vms: int = 6
    scrape_s: int = 2
    window_s: int = 30
    drain_timeout_s: int = 90
    idle_timeout_s: int = 20
    """The shop's session timeout and the agent's idle timeout: a user who leaves without logging out."""
    scale_down_stabilization_s: int = 20
    scale_down_period_s: int = 15
    warm_pool: int = 1
    """Stopped pre-cloned VMs: a scale-up starts one (seconds) before it clones a new one."""
    clone_s: float = 3.0
    boot_s: float = 2.0
    network: str = "auto"
    lb_port: int = 0

    @property
    def network_mode(self) -> str:
        if self.network != "auto":
            return self.network
        return "netns" if os.geteuid() == 0 and shutil.which("ip") else "loopback"


def webappscaling(settings: StackSettings) -> dict[str, Any]:
    return {
        "apiVersion": "webappscaler.io/v1alpha1",
        "kind": "WebAppScaling",
        "metadata": {"name": NAME, "namespace": settings.namespace},
        "spec": {
            "goldenImage": {"name": "webshop-golden"},
            "vmTemplate": {
                "metadata": {"labels": {"app.kubernetes.io/name": NAME}},
                "spec": {
                    "domain": {"cpu": {"cores": 1}, "memory": {"guest": "1Gi"}, "devices": {}},
                    "readinessProbe": {
                        "httpGet": {"port": 9100, "path": "/readyz"},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                },
            },
            "replicas": {"min": settings.min_vms, "max": settings.max_vms},
            "sessions": {
                "targetPerVM": settings.target_per_vm,
                "scrapeIntervalSeconds": settings.scrape_s,
                "scrapeTimeoutSeconds": 1,
                "movingAverage": {"kind": "Simple", "windowSeconds": settings.window_s},
                "agent": {"drainTokenSecretRef": {"name": "agent-drain", "key": "token"}},
            },
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": settings.scale_down_stabilization_s,
                    "policies": [{"type": "VMs", "value": 1, "periodSeconds": settings.scale_down_period_s}],
                }
            },
            "scaleIn": {"drain": {"enabled": True, "timeoutSeconds": settings.drain_timeout_s}},
            "warmPool": {"size": settings.warm_pool},
            "service": {"port": 80, "targetPort": AGENT_PORT},
        },
    }


def guest_commands(idle_timeout_s: int) -> list[str]:
    """The golden image's two services with a short session timeout, so sessions end when users stop."""
    return [
        f"{{bin}}/webshop --listen {{ip}}:8081 --session-timeout {idle_timeout_s}",
        f"{{bin}}/session-agent --listen {{ip}}:{AGENT_PORT} --upstream http://{{ip}}:8081 "
        f"--metrics-listen {{ip}}:9100 --idle-timeout {idle_timeout_s}",
    ]


@dataclass
class DemoStack:
    settings: StackSettings
    step: Step
    workdir: Path | None = None
    keep_workdir: bool = False
    cluster: DevCluster | None = None
    emulator: RunningEmulator | None = None
    operator: subprocess.Popen[bytes] | None = None
    haproxy: HAProxy | None = None
    api: client.ApiClient | None = None
    lb_url: str = ""
    notes: list[str] = field(default_factory=list)
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> DemoStack:
        try:
            self._start()
        except Exception:
            self.keep_workdir = True  # a failed bring-up: the logs say why
            self.close()
            raise
        except BaseException:  # Ctrl-C
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self.step("tearing down: load balancer, operator, emulator and its VMs, control plane"):
            self._exit.close()

    @property
    def kubeconfig(self) -> Path:
        assert self.cluster is not None
        return self.cluster.kubeconfig

    # ---- bring-up --------------------------------------------------------------------------------
    def _start(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="webapp-scaler-demo-"))
            self._exit.callback(self._remove_workdir, self.workdir)
        workdir, settings = self.workdir, self.settings
        mode = settings.network_mode
        with self.step("control plane binaries (built once, then cached)"):
            binaries = find_binaries(build=True)
        with self.step("starting etcd, kube-apiserver, kube-controller-manager"):
            self.cluster = DevCluster(binaries, workdir=workdir / "cluster")
            self.cluster.start()
            self._exit.callback(self.cluster.stop)
        cluster = self.cluster
        self.api = config.new_client_from_config(str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        self._exit.callback(self.api.close)
        with self.step("installing the CRDs (WebAppScaling, KubeVirt and CDI stand-ins)"):
            for path in (REPO / "crds", emulator.CRDS_DIR):
                cluster.kubectl("apply", "--server-side", "-f", str(path))
            cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        token = secrets.token_hex(16)
        with self.step(f"namespace {settings.namespace}, drain token Secret, golden DataVolume"):
            cluster.kubectl("create", "namespace", settings.namespace)
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "agent-drain", "namespace": settings.namespace},
                "stringData": {"token": token},
            }
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(secret))
            cluster.kubectl("apply", "-n", settings.namespace, "-f", str(GOLDEN))
        with self.step(f"emulated KubeVirt + CDI ({mode} network)"):
            self.emulator = self._exit.enter_context(
                run_in_background(
                    cluster.kubeconfig,
                    log_path=workdir / "emulator.log",
                    env={"SESSION_AGENT_DRAIN_TOKEN": token},
                    namespace=settings.namespace,
                    network=mode,
                    workdir=workdir / "emulator",
                    clone_seconds=settings.clone_s,
                    boot_seconds=settings.boot_s,
                    import_seconds=2.0,
                    probe_period=1.0,
                    guest_command=guest_commands(settings.idle_timeout_s),
                )
            )
        with self.step("golden image imported"):
            cluster.kubectl(
                "wait", "-n", settings.namespace, "--for=jsonpath={.status.phase}=Succeeded",
                "--timeout=120s", "datavolume/webshop-golden",
            )  # fmt: skip
        with self.step("operator (webapp-scaler operator --standalone)"):
            self._start_operator(workdir / "operator.log")
        with self.step(f"WebAppScaling {NAME}: first VM cloned, booted and ready"):
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(webappscaling(settings)))
            self._wait_ready_vms(1, timeout=120)
        with self.step("HAProxy in front of the Service, following its endpoints"):
            self._start_load_balancer(workdir / "haproxy", mode)

    def _remove_workdir(self, workdir: Path) -> None:
        """A temporary workdir goes at teardown, unless something asked to keep its logs (a failed run)."""
        if not self.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    def _start_operator(self, log: Path) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "webapp_scaler.cli", "operator", "--standalone"]
        argv += ["-n", self.settings.namespace, "--metrics-port", "0", "--liveness", "off", "--log-format", "plain"]
        with log.open("ab") as out:
            self.operator = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        self._exit.callback(stop, self.operator, 20)

    def _wait_ready_vms(self, count: int, timeout: float) -> None:
        assert self.api is not None
        custom = client.CustomObjectsApi(self.api)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.operator is not None and self.operator.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.operator.returncode}; see its log")
            was: Any = custom.get_namespaced_custom_object(
                "webappscaler.io", "v1alpha1", self.settings.namespace, "webappscalings", NAME
            )
            if int((was.get("status") or {}).get("readyReplicas") or 0) >= count:
                return
            time.sleep(0.5)
        raise TimeoutError(f"no {count} ready VM(s) after {timeout:.0f} s")

    def _start_load_balancer(self, workdir: Path, mode: str) -> None:
        assert self.api is not None
        port = self.settings.lb_port or free_port()
        self.haproxy = HAProxy(LoadBalancerSettings(listen_port=port, admin_socket=workdir / "admin.sock"), workdir)
        self.haproxy.start()
        self._exit.callback(self.haproxy.stop)
        haproxy = self.haproxy

        def apply(backends: list[Backend]) -> None:
            haproxy.update(backends)

        watcher: EndpointSliceWatcher | VMIWatcher
        if mode == "netns":
            watcher = EndpointSliceWatcher(self.api, self.settings.namespace, NAME, apply)
        else:
            watcher = VMIWatcher(self.api, self.settings.namespace, AGENT_PORT, apply)
        watcher.start()
        self._exit.callback(watcher.stop)
        self.lb_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not any(b.ready for b in haproxy.backends):
            if time.monotonic() > deadline:
                raise TimeoutError("the load balancer never saw a ready endpoint")
            time.sleep(0.2)


@contextlib.contextmanager
def quiet_step(_: str) -> Iterator[None]:
    yield
