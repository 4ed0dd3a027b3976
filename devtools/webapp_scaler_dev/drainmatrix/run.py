"""The drain matrix, run: one dev cluster, one emulator and one operator for every combination, each
combination in a namespace of its own with its own load balancer and shoppers, several at a time.

A combination: three VMs ready behind its load balancer → shoppers (log in, browse, fill the cart, check
out, log out; a new one arrives whenever one leaves) → `replicas` 3 → 2 → the operator drains the VM with
the fewest sessions in the combination's mode and deletes it once empty → a few seconds more of shopping →
the figures: sessions lost, errors users saw, requests served by the draining VM, drain → delete time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import yaml
from kubernetes import client, config

import emulator
from emulator.background import run_in_background
from webapp_scaler_dev.demo.load import LoadGenerator, LoadProfile
from webapp_scaler_dev.demo.monitor import History, Monitor, Snapshot
from webapp_scaler_dev.demo.stack import guest_commands  # the same golden image as the demo's
from webapp_scaler_dev.devcluster import DevCluster, find_binaries, gateway_api_crds, traefik_binary
from webapp_scaler_dev.drainmatrix.combinations import (
    GATEWAY,
    NAME,
    Combination,
    MatrixSettings,
    Outcome,
    webappscaling,
)
from webapp_scaler_dev.loadbalancers import traefik as traefik_mod
from webapp_scaler_dev.loadbalancers.endpoints import Backend, EndpointSliceWatcher
from webapp_scaler_dev.loadbalancers.haproxy import HAProxy, LoadBalancerSettings
from webapp_scaler_dev.loadbalancers.nginx import Nginx, NginxSettings
from webapp_scaler_dev.processes import free_port, operator_process, stop

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "manifests" / "examples" / "01-golden-image.yaml"

Progress = Callable[[str], None]


class Balancer(Protocol):
    name: str
    reloads: int

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


@dataclass
class MatrixBed:
    """The shared part: control plane with the Gateway API CRDs, emulated KubeVirt, the operator."""

    settings: MatrixSettings
    workdir: Path
    progress: Progress = print
    cluster: DevCluster | None = None
    api: client.ApiClient | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> MatrixBed:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        s, workdir = self.settings, self.workdir
        binaries = find_binaries(build=True)
        traefik_binary(build=True)
        self.progress("starting etcd, kube-apiserver, kube-controller-manager")
        self.cluster = cluster = DevCluster(binaries, workdir=workdir / "cluster")
        cluster.start()
        self._exit.callback(cluster.stop)
        self.api = config.new_client_from_config(str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        self._exit.callback(self.api.close)
        self.progress("CRDs: WebAppScaling, KubeVirt and CDI stand-ins, Gateway API (experimental channel)")
        for path in (REPO / "crds", emulator.CRDS_DIR, gateway_api_crds("experimental")):
            cluster.kubectl("apply", "--server-side", "-f", str(path))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        for obj in (traefik_mod.ingress_class(), traefik_mod.gateway_class()):
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(obj))
        self.progress("emulated KubeVirt + CDI (a network namespace per VM)")
        self._exit.enter_context(
            run_in_background(
                cluster.kubeconfig,
                log_path=workdir / "emulator.log",
                env={"SESSION_AGENT_DRAIN_TOKEN": self.token},
                all_namespaces=True,
                network="netns",
                workdir=workdir / "emulator",
                clone_seconds=s.clone_s,
                boot_seconds=s.boot_s,
                import_seconds=1.0,
                probe_period=1.0,
                guest_command=guest_commands(s.idle_timeout_s),
            )
        )
        self.progress("operator (all namespaces)")
        operator = operator_process(cluster.kubeconfig, workdir / "operator.log")
        self._exit.callback(stop, operator, 20)

    # ---- one combination --------------------------------------------------------------------------
    async def run(self, combination: Combination) -> Outcome:
        outcome = Outcome(combination)
        namespace = f"dm-{combination.slug}"
        try:
            async with self.combination(combination, namespace) as balancer:
                await self._scale_in(combination, namespace, balancer, outcome)
        except Exception as error:  # one broken combination must not hide the others' figures
            outcome.failure = f"{type(error).__name__}: {error}"[:300]
            self.progress(f"{combination.slug}: {outcome.failure}")
        return outcome

    @contextlib.asynccontextmanager
    async def combination(self, combination: Combination, namespace: str) -> AsyncIterator[Balancer]:
        """The combination's namespace, balancer and WebAppScaling, its VMs ready and routed by the
        balancer; afterwards the WebAppScaling (and so its VMs) is deleted and the balancer stopped."""
        with contextlib.ExitStack() as cleanup:
            await asyncio.to_thread(self._prepare_namespace, namespace)
            balancer = await asyncio.to_thread(self._start_balancer, combination, namespace, cleanup)
            cleanup.callback(self._delete_scaling, namespace)
            await asyncio.to_thread(self._apply, combination, namespace, self.settings.vms_before)
            await self._wait(lambda snap: snap.ready >= self.settings.vms_before, namespace, "VMs ready")
            await self._wait_routed(balancer.url)
            yield balancer

    async def served_by(self, url: str, count: int) -> list[str]:
        """`X-Served-By` of `count` new visitors' requests ("" for one that failed)."""
        return [served for _, served in await asyncio.gather(*(_sessionless(url) for _ in range(count)))]

    def _prepare_namespace(self, namespace: str) -> None:
        assert self.cluster is not None
        cluster = self.cluster
        cluster.kubectl("create", "namespace", namespace)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "agent-drain", "namespace": namespace},
            "stringData": {"token": self.token},
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(secret))
        cluster.kubectl("apply", "-n", namespace, "-f", str(GOLDEN))
        cluster.kubectl(
            "wait", "-n", namespace, "--for=jsonpath={.status.phase}=Succeeded",
            "--timeout=120s", "datavolume/webshop-golden",
        )  # fmt: skip

    def _start_balancer(self, combination: Combination, namespace: str, cleanup: contextlib.ExitStack) -> Balancer:
        assert self.cluster is not None and self.api is not None
        workdir = self.workdir / combination.slug
        port = free_port()
        if combination.balancer == "traefik":
            settings = traefik_mod.TraefikSettings(
                listen_port=port,
                ping_port=free_port(),
                apiserver=self.cluster.server,
                token=self.cluster.token,
                ca_file=self.cluster.ca_file,
                namespaces=(namespace,),
                ingress=combination.route == "Ingress",
                gateway=combination.route == "HTTPRoute",
            )
            if combination.route == "HTTPRoute":
                gw = traefik_mod.gateway(GATEWAY, namespace, port)
                self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(gw))
            traefik = traefik_mod.Traefik(settings, workdir, traefik_binary())
            traefik.start()
            cleanup.callback(traefik.stop)
            return traefik
        proxy: HAProxy | Nginx
        if combination.balancer == "haproxy":
            proxy = HAProxy(LoadBalancerSettings(listen_port=port, admin_socket=workdir / "admin.sock"), workdir)
        else:
            proxy = Nginx(NginxSettings(listen_port=port), workdir)
        proxy.start()
        cleanup.callback(proxy.stop)

        def apply(backends: list[Backend]) -> None:
            proxy.update(backends)

        watcher = EndpointSliceWatcher(self.api, namespace, NAME, apply)
        watcher.start()
        cleanup.callback(watcher.stop)
        return proxy

    def _apply(self, combination: Combination, namespace: str, vms: int) -> None:
        assert self.cluster is not None
        body = webappscaling(combination, namespace, self.settings, vms)
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))

    def _delete_scaling(self, namespace: str) -> None:
        """The WebAppScaling goes and its VMs with it (owner references), so their guests stop."""
        assert self.cluster is not None
        with contextlib.suppress(Exception):
            self.cluster.kubectl("delete", "-n", namespace, "webappscaling", NAME, "--wait=false")

    async def _wait(self, done: Callable[[Snapshot], bool], namespace: str, what: str) -> Snapshot:
        assert self.api is not None
        monitor = Monitor(self.api, namespace, NAME)
        deadline = time.monotonic() + self.settings.timeout_s
        while time.monotonic() < deadline:
            snapshot = await asyncio.to_thread(monitor.poll)
            if done(snapshot):
                return snapshot
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{namespace}: no {what} after {self.settings.timeout_s:.0f} s")

    async def _wait_routed(self, url: str) -> None:
        """Until the balancer answers a request from the shop (Traefik learns routes asynchronously)."""
        deadline = time.monotonic() + 60.0
        async with aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(url + "/", timeout=aiohttp.ClientTimeout(total=2)) as response:
                        if response.status == 200 and response.headers.get("X-Served-By"):
                            return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} answered no request from the shop in 60 s")
                await asyncio.sleep(0.3)

    async def _wait_spread(self, namespace: str, monitor: Monitor) -> None:
        """Until the operator's status counts sessions on every VM: whichever VM the scale-in drains then
        holds users to keep. A VM that joined the balancer last can hold none for a few seconds after the
        warm-up (its endpoint turns ready after the others'), and draining it would prove nothing."""
        least = self.settings.sessions_per_vm_before_drain
        deadline = time.monotonic() + self.settings.timeout_s
        while True:
            snapshot = await asyncio.to_thread(monitor.poll)
            counts = {vm.name: vm.sessions for vm in snapshot.vms}
            if len(counts) >= self.settings.vms_before and all((n or 0) >= least for n in counts.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{namespace}: sessions per VM {counts} never all reached {least}")
            await asyncio.sleep(0.5)

    async def _probe(self, namespace: str, vm: str, url: str, outcome: Outcome) -> None:
        """Once the draining VM's agent says it drains: new visitors through the balancer, each without a
        cookie, so some land on the draining VM; then how many of them that agent refused. In
        RefuseNewSessions mode every refusal must have been retried elsewhere (all answered 200)."""
        assert self.api is not None
        custom = client.CustomObjectsApi(self.api)
        vmi: Any = await asyncio.to_thread(
            custom.get_namespaced_custom_object, "kubevirt.io", "v1", namespace, "virtualmachineinstances", vm
        )
        ip = ((vmi.get("status") or {}).get("interfaces") or [{}])[0].get("ipAddress")
        if not ip:
            return
        metrics = f"http://{ip}:9100/metrics"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:

            async def counters() -> tuple[float, float]:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(metrics) as response:
                        return agent_counters(await response.text())
                return 0.0, 0.0

            deadline = time.monotonic() + 5
            while (await counters())[0] != 1.0:
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.1)
            _, refused_before = await counters()
            statuses = await asyncio.gather(*(_sessionless(url) for _ in range(self.settings.probes)))
            _, refused_after = await counters()
        outcome.probes = len(statuses)
        outcome.probes_ok = sum(1 for status, _ in statuses if status == 200)
        outcome.refused_by_draining = int(refused_after - refused_before)

    async def _scale_in(self, combination: Combination, namespace: str, balancer: Balancer, outcome: Outcome) -> None:
        assert self.api is not None
        s = self.settings
        monitor = Monitor(self.api, namespace, NAME)
        history = History()
        latest = Snapshot(at=time.monotonic())
        profile = LoadProfile(
            duration_s=24 * 3600,  # ended by `stop_users` below, not by the profile
            base_users=s.users,
            peak_users=s.users,
            actions=s.actions,
            think_s=s.think_s,
            logout_share=1.0,
        )
        load = LoadGenerator(balancer.url, profile, draining=lambda: latest.draining, seed=hash(combination.slug))
        users = asyncio.create_task(load.run())
        try:
            await asyncio.sleep(s.warmup_s)
            await self._wait_spread(namespace, monitor)
            await asyncio.to_thread(self._apply, combination, namespace, s.vms_after)
            deadline = time.monotonic() + s.timeout_s
            probed = False
            while not history.drained_and_deleted:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no VM drained and deleted after {s.timeout_s:.0f} s")
                if users.done():
                    users.result()  # the load generator failed: say why
                latest = await asyncio.to_thread(monitor.poll)
                history.record(latest)
                if history.draining_since and not probed:
                    probed = True
                    await self._probe(namespace, next(iter(history.draining_since)), balancer.url, outcome)
                await asyncio.sleep(0.5)
            await asyncio.sleep(s.after_delete_s)
        finally:
            load.profile = dataclasses.replace(profile, duration_s=0.0)  # no new users; the others finish
            with contextlib.suppress(Exception):
                await asyncio.wait_for(users, timeout=60)
            if not users.done():
                users.cancel()
                await load.cancel()
        stats = load.stats
        outcome.users = stats.users_started
        outcome.requests = stats.requests
        outcome.sessions_lost = stats.sessions_lost
        outcome.errors = stats.errors
        outcome.turned_away = stats.users_turned_away
        outcome.losses = list(stats.losses[:5])
        outcome.error_kinds = dict(stats.error_kinds)
        drained = history.drained_and_deleted[0]
        outcome.drained_vm = drained
        outcome.served_by_draining = stats.served_while_draining[drained]
        outcome.drain_to_delete_s = history.deleted[drained] - history.draining_since[drained]


async def run_all(bed: MatrixBed, combinations: list[Combination]) -> list[Outcome]:
    gate = asyncio.Semaphore(bed.settings.parallel)

    async def one(combination: Combination) -> Outcome:
        async with gate:
            bed.progress(f"{combination.slug}: starting")
            outcome = await bed.run(combination)
            bed.progress(
                f"{combination.slug}: {outcome.users} users, {outcome.sessions_lost} sessions lost, "
                f"{outcome.errors} errors, {outcome.served_by_draining} served while draining"
            )
            return outcome

    return list(await asyncio.gather(*(one(c) for c in combinations)))


@contextlib.contextmanager
def matrix_bed(settings: MatrixSettings, workdir: Path | None, progress: Progress) -> Iterator[MatrixBed]:
    """A bed in `workdir` (or a temporary directory removed afterwards unless the run raised)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise PermissionError("the drain matrix needs root and iproute2: every VM is a network namespace")
    own = workdir is None
    path = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="webapp-scaler-drain-matrix-"))
    path.mkdir(parents=True, exist_ok=True)
    ok = False
    try:
        with MatrixBed(settings, path, progress) as bed:
            yield bed
        ok = True
    finally:
        if own and ok:
            shutil.rmtree(path, ignore_errors=True)


async def _sessionless(url: str) -> tuple[int, str]:
    """One request of a new visitor (no cookie at all), on a connection of its own: status and server."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        try:
            async with http.get(url + "/") as response:
                return response.status, response.headers.get("X-Served-By", "")
        except (aiohttp.ClientError, TimeoutError):
            return 0, ""


def agent_counters(text: str) -> tuple[float, float]:
    """(`webapp_draining`, refused-while-draining) from an agent's /metrics text."""
    draining = refused = 0.0
    for line in text.splitlines():
        if line.startswith("webapp_draining "):
            draining = float(line.split()[-1])
        elif line.startswith("webapp_proxy_rejected_total{") and 'reason="draining"' in line:
            refused = float(line.split()[-1])
    return draining, refused


def as_dict(outcome: Outcome) -> dict[str, Any]:
    """An outcome as JSON-ready data (the combination as its three fields, plus `supported`)."""
    data = dataclasses.asdict(outcome)
    data["supported"] = outcome.supported
    return data
