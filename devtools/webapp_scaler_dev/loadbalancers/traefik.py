"""Traefik v3, a real ingress controller, reading Ingresses, Gateways and HTTPRoutes from the dev cluster.

Traefik is built from the Go module proxy (`hack/build-load-balancers.sh`, version pinned in
`devcluster/versions.env`) and runs as a process on loopback with its Kubernetes Ingress and Kubernetes
Gateway providers pointed at the dev cluster's apiserver (static token, the cluster's CA). It follows the
EndpointSlices itself: no follower of ours sits in between, so what it does with a not-ready endpoint is
Traefik's own behaviour. In v3.6.12, read in its source:

- Ingress provider (`pkg/provider/kubernetes/ingress/kubernetes.go`, `loadService`): an endpoint becomes a
  server when its `serving` condition is true; a terminating one is *fenced* (sticky requests only). A
  not-ready VM that is not terminating is dropped, so its cookie-pinned users are balanced elsewhere.
- Gateway provider (`pkg/provider/kubernetes/gateway/kubernetes.go`): only `ready` endpoints; HTTPRoute
  `retry` and `sessionPersistence` are not implemented (`httproute.go`), and a Service takes no sticky
  annotation there (`annotations.go` knows only `nativeLB`).
- The `retry` middleware (`pkg/middlewares/retry/retry.go`) retries only until the request was written to
  a server: a 503 from a draining agent is returned to the user. Retry on status codes came in v3.7.
"""

from __future__ import annotations

import logging
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from webapp_scaler_dev.processes import die_with_parent, stop

log = logging.getLogger("webapp_scaler_dev.loadbalancers.traefik")

INGRESS_CONTROLLER = "traefik.io/ingress-controller"
GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
CLASS_NAME = "traefik"


@dataclass(frozen=True)
class TraefikSettings:
    listen_port: int
    ping_port: int
    apiserver: str
    token: str
    ca_file: Path
    namespaces: tuple[str, ...] = ()
    listen_host: str = "127.0.0.1"
    ingress: bool = True
    gateway: bool = True
    log_level: str = "INFO"
    throttle: str = "0s"


def static_config(settings: TraefikSettings) -> dict[str, Any]:
    """Traefik's static configuration (its file provider format) for one web entry point."""
    kube: dict[str, Any] = {
        "endpoint": settings.apiserver,
        "token": settings.token,
        "certAuthFilePath": str(settings.ca_file),
        "throttleDuration": settings.throttle,
    }
    if settings.namespaces:
        kube["namespaces"] = list(settings.namespaces)
    providers: dict[str, Any] = {}
    if settings.ingress:
        providers["kubernetesIngress"] = dict(kube)
    if settings.gateway:
        providers["kubernetesGateway"] = dict(kube)
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {"address": f"{settings.listen_host}:{settings.listen_port}"},
            "ping": {"address": f"{settings.listen_host}:{settings.ping_port}"},
        },
        "ping": {"entryPoint": "ping"},
        "log": {"level": settings.log_level, "noColor": True},
        "providers": providers,
    }


def ingress_class() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": CLASS_NAME},
        "spec": {"controller": INGRESS_CONTROLLER},
    }


def gateway_class() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": CLASS_NAME},
        "spec": {"controllerName": GATEWAY_CONTROLLER},
    }


def gateway(name: str, namespace: str, port: int) -> dict[str, Any]:
    """A Gateway of Traefik's class; Traefik binds a listener to the entry point of the same port."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": CLASS_NAME,
            "listeners": [
                {"name": "web", "protocol": "HTTP", "port": port, "allowedRoutes": {"namespaces": {"from": "Same"}}}
            ],
        },
    }


class TraefikError(RuntimeError):
    """Traefik did not start; the message carries its log."""


@dataclass
class Traefik:
    """One Traefik process; `url` is its web entry point."""

    settings: TraefikSettings
    workdir: Path
    binary: Path
    process: subprocess.Popen[bytes] | None = None
    reloads: int = 0  # Traefik applies changes without reloads
    name: str = "traefik"
    _started: float = field(default=0.0, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.settings.listen_host}:{self.settings.listen_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "traefik.log"

    def start(self, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "traefik.yaml"
        config.write_text(yaml.safe_dump(static_config(self.settings), sort_keys=False))
        config.chmod(0o600)  # it holds the apiserver token
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.binary), f"--configFile={config}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        ping = f"http://{self.settings.listen_host}:{self.settings.ping_port}/ping"
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise TraefikError(f"traefik exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(ping, timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TraefikError(f"traefik did not answer {ping} in {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)
        log.info("traefik started", extra={"fields": {"url": self.url}})

    def tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, 10)
            self.process = None
