"""Start and stop etcd + kube-apiserver + kube-controller-manager on free loopback ports.

Everything lives in one working directory (data, certificates, logs, kubeconfig). Authentication is a
static admin token in `system:masters`; authorization is RBAC, as in a real cluster, so RBAC mistakes in
our manifests show up in tests. Children started in the default (attached) mode are killed by the kernel
when the Python process that started them dies (PR_SET_PDEATHSIG), so even a SIGKILLed test run leaves no
control plane behind; `detach=True` (the `dev-cluster up` CLI) lets them outlive the command and records
their pids in `state.json`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from webapp_scaler_dev.devcluster.binaries import Binaries
from webapp_scaler_dev.processes import die_with_parent, free_port, stop

# Controllers that a test bed for an operator needs: ownerReference garbage collection, namespace
# deletion, default service accounts and their tokens, EndpointSlices for Services, the type check of
# ValidatingAdmissionPolicies (it writes their status.typeChecking), and Deployment rollouts (the Helm
# chart's upgrade; the pods stay unscheduled: there is no scheduler and no kubelet).
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "root-ca-certificate-publisher-controller",
    "validatingadmissionpolicy-status-controller",
)
SERVICE_CIDR = "10.96.0.0/16"  # allocation range for ClusterIPs only; nothing is routed to it


class DevClusterError(RuntimeError):
    """The local control plane did not come up; the message carries the failing component's log tail."""


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call whose message carries kubectl's own explanation."""

    def __str__(self) -> str:
        return f"kubectl {' '.join(map(str, self.cmd[3:]))} failed ({self.returncode}): {self.stderr.strip()}"


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes] | None
    pid: int
    log: Path


@dataclass
class DevCluster:
    """One local control plane. Use as a context manager, or call `start()` and `stop()`."""

    binaries: Binaries
    workdir: Path | None = None
    detach: bool = False
    progress: Callable[[str], None] = lambda _msg: None
    components: list[Component] = field(default_factory=list)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    etcd_port: int = 0
    etcd_peer_port: int = 0
    apiserver_port: int = 0
    controller_manager_port: int = 0
    apiserver_args: tuple[str, ...] = ()
    """Extra kube-apiserver flags (the scale benchmark's audit log)."""
    users: tuple[str, ...] = ()
    """More users in system:masters, each with a token and a kubeconfig of its own (`kubeconfig_for`): the
    audit log then tells their requests apart."""
    _own_workdir: bool = False

    # ---- paths -----------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self._dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def ca_file(self) -> Path:
        return self._dir / "pki" / "apiserver.crt"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise DevClusterError("the cluster has not been started")
        return self.workdir

    # ---- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> DevCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="webapp-scaler-cluster-"))
            self._own_workdir = True
        for sub in ("etcd", "pki", "logs"):
            (self._dir / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._write_credentials()
            self._start_etcd(timeout)
            self._start_apiserver(timeout)
            self._write_kubeconfig()
            self._start_controller_manager(timeout)
            self._wait_for_default_service_account(timeout)
        except BaseException:
            self.stop()
            raise
        self._write_state()
        self.progress(f"control plane ready at {self.server} (kubeconfig {self.kubeconfig})")

    def stop(self, grace: float = 10.0) -> None:
        """Stop every component (newest first): SIGTERM, then SIGKILL after `grace` seconds."""
        for component in reversed(self.components):
            _terminate(component, grace)
        self.components.clear()
        if self.workdir is not None:
            with contextlib.suppress(FileNotFoundError):
                (self._dir / "state.json").unlink()
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def stop_control_plane(self, grace: float = 10.0) -> None:
        """An outage: kube-apiserver, then etcd, stopped (SIGTERM, SIGKILL after `grace` s); the
        controller-manager stays up and retries, as every other client does. `start_control_plane` brings
        them back on the same ports with the same data and certificates, so clients reconnect by themselves."""
        for name in ("kube-apiserver", "etcd"):
            for component in [c for c in self.components if c.name == name]:
                _terminate(component, grace)
                self.components.remove(component)

    def start_control_plane(self, timeout: float = 120.0) -> None:
        """etcd, then kube-apiserver, again after `stop_control_plane` (same ports, data dir, certificates)."""
        if self.etcd_port == 0 or self.apiserver_port == 0:
            raise DevClusterError("the cluster has not been started")
        self._start_etcd(timeout)
        self._start_apiserver(timeout)
        self._write_state()

    # ---- client helpers --------------------------------------------------------------------------
    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl against this cluster; raise with its stderr when `check` fails."""
        cmd = [
            str(self.binaries["kubectl"]),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self._dir / 'kubectl-cache'}",  # never another cluster's discovery
            *args,
        ]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    # ---- the components --------------------------------------------------------------------------
    def _write_credentials(self) -> None:
        pki = self._dir / "pki"
        lines = [f'{self.token},admin,admin,"system:masters"'] + [
            f'{self._user_token(user)},{user},{user},"system:masters"' for user in self.users
        ]
        (pki / "tokens.csv").write_text("\n".join(lines) + "\n")
        if not (pki / "sa.key").exists():
            _run(["openssl", "genrsa", "-out", str(pki / "sa.key"), "2048"])
            _run(["openssl", "rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")])

    def _spawn(self, name: str, argv: Sequence[str]) -> Component:
        log = self._dir / "logs" / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=None if self.detach else die_with_parent(),
            )
        component = Component(name, process, process.pid, log)
        self.components.append(component)
        return component

    def _start_etcd(self, timeout: float) -> None:
        self.etcd_port = self.etcd_port or free_port()  # kept across a restart: the apiserver's --etcd-servers
        self.etcd_peer_port = self.etcd_peer_port or free_port()
        client_url, peer_url = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{self.etcd_peer_port}"
        self.progress(f"starting etcd on {client_url}")
        etcd = self._spawn(
            "etcd",
            [
                str(self.binaries["etcd"]),
                f"--data-dir={self._dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",  # a throwaway test store: durability buys nothing, fsync costs seconds
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )
        self._wait(etcd, f"{client_url}/health", timeout, expect=b'"health":"true"')

    def _start_apiserver(self, timeout: float) -> None:
        self.apiserver_port = self.apiserver_port or free_port()  # kept across a restart: every kubeconfig
        pki = self._dir / "pki"
        self.progress(f"starting kube-apiserver {self.binaries.kubernetes_version} on {self.server}")
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.binaries["kube-apiserver"]),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={pki}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",  # the kubernetes Service cannot point at loopback
                "--profiling=false",
                "--v=1",
                *self.apiserver_args,
            ],
        )
        self._wait(apiserver, f"{self.server}/readyz", timeout, expect=b"ok", token=True)

    def _start_controller_manager(self, timeout: float) -> None:
        self.controller_manager_port = free_port()
        pki = self._dir / "pki"
        self.progress("starting kube-controller-manager")
        kcm = self._spawn(
            "kube-controller-manager",
            [
                str(self.binaries["kube-controller-manager"]),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.controller_manager_port}",
                f"--cert-dir={pki / 'kcm'}",
                "--leader-elect=false",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--v=1",
            ],
        )
        self._wait(kcm, f"https://127.0.0.1:{self.controller_manager_port}/healthz", timeout, expect=b"ok")

    def _wait_for_default_service_account(self, timeout: float) -> None:
        """The serviceaccount controller creating `default/default` proves the controller-manager works."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise DevClusterError("kube-controller-manager never created the default service account")

    def _user_token(self, user: str) -> str:
        return hashlib.sha256(f"{self.token}/{user}".encode()).hexdigest()[:32]

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig of one of `users` (written on first use)."""
        if user not in self.users:
            raise DevClusterError(f"{user} is not a user of this cluster")
        path = self._dir / f"kubeconfig-{user}"
        if not path.exists():
            self._write_kubeconfig(path, user, self._user_token(user))
        return path

    def _write_kubeconfig(self, path: Path | None = None, user: str = "admin", token: str | None = None) -> None:
        path = path or self.kubeconfig
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "dev",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": user, "user": {"token": token or self.token}}],
            "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": user}}],
            "current-context": "dev",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    def _write_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "components": [{"name": c.name, "pid": c.pid, "log": str(c.log)} for c in self.components],
        }
        (self._dir / "state.json").write_text(json.dumps(state, indent=2))

    def _tls_context(self, url: str) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if url.startswith(self.server):  # the CA file appears once the apiserver generated its cert
            context.load_verify_locations(self.ca_file)
        else:  # the controller-manager serves a self-signed cert of its own; we only ask it for health
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _wait(self, component: Component, url: str, timeout: float, *, expect: bytes, token: bool = False) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if component.process is not None and component.process.poll() is not None:
                raise DevClusterError(
                    f"{component.name} exited with {component.process.returncode}:\n{_tail(component.log)}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError, ssl.SSLError):
                context = self._tls_context(url)
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=2, context=context) as response:
                    if expect in response.read():
                        return
            time.sleep(0.2)
        raise DevClusterError(f"{component.name} not ready after {timeout:.0f} s:\n{_tail(component.log)}")


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _terminate(component: Component, grace: float) -> None:
    if component.process is not None:
        stop(component.process, grace)
        return
    # detached: we only know the pid; make sure it is still ours before signalling it
    if not _pid_runs(component.pid, component.name):
        return
    os.kill(component.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid_runs(component.pid, component.name):
        time.sleep(0.1)
    if _pid_runs(component.pid, component.name):
        os.kill(component.pid, signal.SIGKILL)


def _pid_runs(pid: int, name: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
    return not zombie and cmdline.endswith(name.encode())


def attach(workdir: Path, binaries: Binaries) -> DevCluster:
    """Rebuild a handle on a detached cluster from its `state.json`, e.g. for `dev-cluster down`."""
    state = json.loads((workdir / "state.json").read_text())
    cluster = DevCluster(binaries, workdir=workdir, detach=True)
    cluster.apiserver_port = int(state["server"].rsplit(":", 1)[1])
    cluster.components = [Component(c["name"], None, int(c["pid"]), Path(c["log"])) for c in state["components"]]
    return cluster
