"""The demo stack, brought up step by step and torn down in reverse, whatever happens in between.

control plane → CRDs → namespace → golden DataVolume → emulated KubeVirt/CDI (a network namespace per VM
when root) → the operator → the WebAppScaling → the load balancer: HAProxy following the Service's endpoints
(haproxy-ingress with drain support), or nginx doing the same, or Traefik reading the Ingress itself.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

import emulator
from emulator.background import RunningEmulator, run_in_background
from webapp_scaler_dev.demo.prometheus import AgentTarget, Prometheus
from webapp_scaler_dev.devcluster import DevCluster, find_binaries, traefik_binary
from webapp_scaler_dev.loadbalancers import traefik
from webapp_scaler_dev.loadbalancers.endpoints import Backend, EndpointSliceWatcher, VMIWatcher
from webapp_scaler_dev.loadbalancers.haproxy import HAProxy, LoadBalancerSettings
from webapp_scaler_dev.loadbalancers.nginx import Nginx, NginxSettings
from webapp_scaler_dev.processes import free_port, operator_process, stop

REPO = Path(__file__).resolve().parents[3]
NAME = "webshop"
GOLDEN = REPO / "manifests" / "examples" / "01-golden-image.yaml"
AGENT_PORT = 8080
AGENT_METRICS_PORT = 9100

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
    load_balancer: str = "haproxy"
    """haproxy (default: drain support and retries on 503, both drain modes lose nothing), nginx, or traefik
    (v3.6 shows a 503 to a new user who lands on a draining VM; docs/load-balancers.md)."""
    drain_mode: str | None = None
    """spec.scaleIn.drain.mode; None: the operator's default."""

    @property
    def network_mode(self) -> str:
        if self.network != "auto":
            return self.network
        return "netns" if os.geteuid() == 0 and shutil.which("ip") else "loopback"


# Small numbers so a scale-out and a complete scale-in fit in about two minutes: the end-to-end test's
# stack, and the chaos runs' (a kill then lands in a fleet busy doing one of them).
QUICK_STACK = StackSettings(
    target_per_vm=5,
    max_vms=4,
    scrape_s=1,
    window_s=10,
    drain_timeout_s=60,
    idle_timeout_s=8,
    scale_down_stabilization_s=5,
    scale_down_period_s=5,
    clone_s=1.0,
    boot_s=1.0,
    warm_pool=1,
    network="netns",
)


def vm_template(app: str, *, failure_threshold: int) -> dict[str, Any]:
    """The VMs of the golden image: one core, 1 GiB, ready when the agent's /readyz says so (probed every
    second, not ready after `failure_threshold` misses). An answer may take 3 s: on a busy host a slow
    agent is not a gone one, and a VM that flaps out of the load balancer drops its users there."""
    return {
        "metadata": {"labels": {"app.kubernetes.io/name": app}},
        "spec": {
            "domain": {"cpu": {"cores": 1}, "memory": {"guest": "1Gi"}, "devices": {}},
            "readinessProbe": {
                "httpGet": {"port": 9100, "path": "/readyz"},
                "periodSeconds": 1,
                "timeoutSeconds": 3,
                "failureThreshold": failure_threshold,
            },
        },
    }


def webappscaling(settings: StackSettings) -> dict[str, Any]:
    drain: dict[str, Any] = {"enabled": True, "timeoutSeconds": settings.drain_timeout_s}
    if settings.drain_mode is not None:
        drain["mode"] = settings.drain_mode
    body: dict[str, Any] = {
        "apiVersion": "webappscaler.io/v1alpha1",
        "kind": "WebAppScaling",
        "metadata": {"name": NAME, "namespace": settings.namespace},
        "spec": {
            "goldenImage": {"name": "webshop-golden"},
            "vmTemplate": vm_template(NAME, failure_threshold=1),
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
            "scaleIn": {"drain": drain},
            "warmPool": {"size": settings.warm_pool},
            "service": {"port": 80, "targetPort": AGENT_PORT},
        },
    }
    if settings.load_balancer == "traefik":
        body["spec"]["ingress"] = {"enabled": True, "className": traefik.CLASS_NAME, "controller": "Traefik"}
    return body


def guest_commands(idle_timeout_s: int) -> list[str]:
    """The golden image's two services with a short session timeout, so sessions end when users stop."""
    return [
        f"{{bin}}/webshop --listen {{ip}}:8081 --session-timeout {idle_timeout_s} --server-name {{vm}}",
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
    balancer: HAProxy | Nginx | traefik.Traefik | None = None
    api: client.ApiClient | None = None
    lb_url: str = ""
    operator_metrics: str = ""
    """host:port of the operator's /metrics."""
    prometheus: Prometheus | None = None
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
        with self.step("tearing down: Prometheus, load balancer, operator, emulator and its VMs, control plane"):
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
        with self.step(LOAD_BALANCER_STEPS[settings.load_balancer]):
            self._start_load_balancer(workdir / settings.load_balancer, mode)
        if Prometheus.installed():
            with self.step("Prometheus scraping the operator and every VM's session agent, alerts loaded"):
                self._start_prometheus(workdir / "prometheus")
        else:
            self.notes.append("no prometheus binary (make system-packages): the demo runs without Prometheus")

    def _remove_workdir(self, workdir: Path) -> None:
        """A temporary workdir goes at teardown, unless something asked to keep its logs (a failed run)."""
        if not self.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    def _start_operator(self, log: Path) -> None:
        port = free_port()
        self.operator_metrics = f"127.0.0.1:{port}"
        self.operator = operator_process(self.kubeconfig, log, [self.settings.namespace], metrics_port=port)
        self._exit.callback(self._stop_operator)

    def _stop_operator(self) -> None:
        """Whichever operator process runs at the end: the chaos runs replace the first one."""
        if self.operator is not None:
            stop(self.operator, 20)

    def _start_prometheus(self, workdir: Path) -> None:
        """Prometheus on loopback; the agents' targets follow the VMIs (every running VM, ready, booting or
        draining: a draining agent's webapp_draining is worth seeing)."""
        assert self.api is not None
        settings = self.settings
        prometheus = Prometheus(
            workdir, self.operator_metrics, settings.namespace, NAME, scrape_s=min(settings.scrape_s, 2)
        )
        prometheus.start()
        self._exit.callback(prometheus.stop)
        self.prometheus = prometheus

        def follow(backends: list[Backend]) -> None:
            prometheus.set_agents([AgentTarget(b.name, b.address, b.port) for b in backends])

        watcher = VMIWatcher(self.api, settings.namespace, AGENT_METRICS_PORT, follow)
        watcher.start()
        self._exit.callback(watcher.stop)

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
        assert self.api is not None and self.cluster is not None
        port = self.settings.lb_port or free_port()
        self.lb_url = f"http://127.0.0.1:{port}"
        if self.settings.load_balancer == "traefik":
            self._start_traefik(workdir, port)
            return
        proxy: HAProxy | Nginx
        if self.settings.load_balancer == "nginx":
            proxy = Nginx(NginxSettings(listen_port=port), workdir)
        else:
            proxy = HAProxy(LoadBalancerSettings(listen_port=port, admin_socket=workdir / "admin.sock"), workdir)
        proxy.start()
        self._exit.callback(proxy.stop)
        self.balancer = proxy

        def apply(backends: list[Backend]) -> None:
            proxy.update(backends)

        watcher: EndpointSliceWatcher | VMIWatcher
        if mode == "netns":
            watcher = EndpointSliceWatcher(self.api, self.settings.namespace, NAME, apply)
        else:
            watcher = VMIWatcher(self.api, self.settings.namespace, AGENT_PORT, apply)
        watcher.start()
        self._exit.callback(watcher.stop)
        deadline = time.monotonic() + 30
        while not any(b.ready for b in proxy.backends):
            if time.monotonic() > deadline:
                raise TimeoutError("the load balancer never saw a ready endpoint")
            time.sleep(0.2)

    def _start_traefik(self, workdir: Path, port: int) -> None:
        """Traefik reads the operator's Ingress and the Service's EndpointSlices from the apiserver itself."""
        assert self.cluster is not None
        cluster = self.cluster
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(traefik.ingress_class()))
        settings = traefik.TraefikSettings(
            listen_port=port,
            ping_port=free_port(),
            apiserver=cluster.server,
            token=cluster.token,
            ca_file=cluster.ca_file,
            namespaces=(self.settings.namespace,),
            gateway=False,
        )
        self.balancer = proxy = traefik.Traefik(settings, workdir, traefik_binary(build=True))
        proxy.start()
        self._exit.callback(proxy.stop)
        deadline = time.monotonic() + 60
        while True:  # until Traefik has read the Ingress and routes to a VM
            with contextlib.suppress(OSError), urllib.request.urlopen(self.lb_url + "/", timeout=2) as response:
                if response.headers.get("X-Served-By"):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"traefik did not route the Ingress in 60 s:\n{proxy.tail()}")
            time.sleep(0.3)


LOAD_BALANCER_STEPS = {
    "haproxy": "HAProxy in front of the Service, following its endpoints",
    "nginx": "nginx in front of the Service, following its ready endpoints",
    "traefik": "Traefik reading the Ingress and the Service's endpoints from the apiserver",
}


@contextlib.contextmanager
def quiet_step(_: str) -> Iterator[None]:
    yield
