"""The operator end to end on the real control plane: the operator process runs with the RBAC of
manifests/default/rbac.yaml, the emulator plays KubeVirt and CDI, and every VM runs the real session
agent, to which the tests push session counts."""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.background import run_in_background
from tests.integration.conftest import REPO, Kubectl
from tests.integration.gateway_api import install_gateway_api
from tests.integration.operator_harness import (
    PUSH_AGENT,
    Cluster,
    agent_drain_request,
    agent_drain_state,
    apply,
    golden_datavolume,
    operator,
    push_sessions,
    wait_for,
    webappscaling,
)
from webapp_scaler_dev.devcluster import DevCluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.usefixtures("crds_installed"),
    # every VM gets a network namespace and a real pod address: the operator trusts a VMI's address only
    # when its virt-launcher pod has it, and never talks to loopback (docs/security.md)
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: every VM is a network namespace (CI runs as root)"),
]


@pytest.fixture(scope="module")
def operator_kubeconfig(cluster: DevCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig with the token of the operator's own service account: only its RBAC applies."""
    manifests = REPO / "manifests"
    kubectl("apply", "-f", str(manifests / "base" / "namespace.yaml"), "-f", str(manifests / "default" / "rbac.yaml"))
    return service_account_kubeconfig(kubectl, "webapp-scaler", tmp_path_factory.mktemp("operator"))


def service_account_kubeconfig(kubectl: Kubectl, account: str, directory: Path) -> Path:
    """The test cluster's kubeconfig, authenticated as `webapp-scaler/<account>` instead of the admin."""
    token = kubectl("create", "token", account, "-n", "webapp-scaler", "--duration=2h").stdout.strip()
    config = json.loads(kubectl("config", "view", "--raw", "-o", "json").stdout)
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path = directory / "kubeconfig"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def emulator(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    workdir = tmp_path_factory.mktemp("emulator")
    with run_in_background(
        cluster.kubeconfig,
        workdir=workdir,
        log_path=workdir / "emulator.log",
        clone_seconds=1.0,
        import_seconds=0.5,
        boot_seconds=0.5,
        probe_period=0.5,
        guest_command=[PUSH_AGENT],
        guest_port=[9100],
        network="netns",
    ):
        yield


@pytest.fixture
def env(kubectl: Kubectl, namespace: str, emulator: None, operator_kubeconfig: Path, tmp_path: Path) -> Any:
    cluster = Cluster(kubectl, namespace)
    apply(kubectl, namespace, golden_datavolume())

    class Env:
        def __init__(self) -> None:
            self.cluster = cluster
            self.kubectl = kubectl
            self.namespace = namespace
            self.operator_log = tmp_path / "operator.log"

        def operator(self) -> Any:
            return operator(operator_kubeconfig, namespace, self.operator_log)

        def apply(self, *objects: dict[str, Any]) -> None:
            apply(kubectl, namespace, *objects)

    return Env()


def ready_vms(env: Any, count: int, timeout: float = 60) -> dict[str, str]:
    """Wait until exactly `count` VMs exist and all are ready; their names → IPs."""

    def check() -> dict[str, str] | None:
        names = env.cluster.vm_names()
        ips = env.cluster.ready_ips()
        return {n: ips[n] for n in names} if len(names) == count and set(names) <= ips.keys() else None

    return dict(wait_for(check, timeout, what=f"{count} ready VMs"))


def test_creates_min_vms_cloned_from_the_golden_image_with_service_and_ingress(env: Any) -> None:
    env.apply(webappscaling(replicas={"min": 2, "max": 4}))
    with env.operator():
        ips = ready_vms(env, 2)
        was = env.cluster.was()
        owner = {"apiVersion": "webappscaler.io/v1alpha1", "kind": "WebAppScaling", "name": "shop"}
        for vm in env.cluster.vms():
            name = vm["metadata"]["name"]
            ref = vm["metadata"]["ownerReferences"][0]
            assert {k: ref[k] for k in owner} == owner
            assert ref["uid"] == was["metadata"]["uid"]
            assert ref["controller"] is True
            [template] = vm["spec"]["dataVolumeTemplates"]
            assert template["metadata"]["name"] == f"{name}-rootdisk"
            assert template["spec"]["source"] == {"pvc": {"namespace": env.namespace, "name": "golden"}}
            assert vm["spec"]["runStrategy"] == "Always"
            assert vm["spec"]["template"]["metadata"]["labels"]["app"] == "shop"
            dv = env.cluster.get("datavolume", f"{name}-rootdisk")
            assert dv["status"]["phase"] == "Succeeded"
            assert dv["metadata"]["ownerReferences"][0]["name"] == name  # owned by its VM

        service = env.cluster.get("service", "shop")
        assert service["spec"]["selector"] == {"webappscaler.io/scaling": "shop"}
        assert service["spec"]["ports"][0]["targetPort"] == 8080
        assert service["spec"]["sessionAffinity"] == "ClientIP"
        assert service["metadata"]["ownerReferences"][0]["uid"] == was["metadata"]["uid"]
        ingress = env.cluster.get("ingress", "shop")
        assert ingress["spec"]["rules"][0]["host"] == "shop.example.test"
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
        assert ingress["metadata"]["ownerReferences"][0]["uid"] == was["metadata"]["uid"]

        for ip in ips.values():
            push_sessions(ip, 3)
        status = wait_for(
            lambda: (
                (s := env.cluster.was().get("status") or {}).get("readyReplicas") == 2
                and s.get("sessions", {}).get("current") == 6
                and s
            ),
            what="status with 2 ready VMs and 6 sessions",
        )
        assert status["replicas"] == 2 and status["desiredReplicas"] == 2
        assert status["observedGeneration"] == was["metadata"]["generation"]
        assert status["selector"] == "webappscaler.io/scaling=shop"
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["Ready"]["status"] == "True"
        assert conditions["GoldenImageReady"]["status"] == "True"
        assert conditions["MetricsAvailable"]["status"] == "True"
        assert {row["name"] for row in status["vms"]} == set(ips)


def test_scale_up_then_drain_the_fewest_session_vm_and_delete_it_when_empty(env: Any) -> None:
    env.apply(webappscaling())
    with env.operator():
        [(_, ip)] = ready_vms(env, 1).items()
        push_sessions(ip, 25)  # 25 sessions, 10 per VM → 3 VMs
        ips = ready_vms(env, 3)
        scaled = wait_for(lambda: env.cluster.events("ScaledUp"), what="a ScaledUp event")
        pattern = r"scaled up 1→[23]: 2 s simple average \d+ sessions > 1 VMs × 10 target \(\+\d+ %\)"
        assert any(re.search(pattern, e["message"]) for e in scaled), [e["message"] for e in scaled]

        # load falls: 12 sessions need 2 VMs; the VM with the fewest sessions must be the one to go
        counts = dict(zip(sorted(ips), [5, 1, 6], strict=True))
        victim = min(counts, key=lambda n: counts[n])
        for name, count in counts.items():
            push_sessions(ips[name], count)
        draining = wait_for(
            lambda: [
                vm["metadata"]["name"]
                for vm in env.cluster.vms()
                if "webappscaler.io/draining-since" in vm["metadata"].get("annotations", {})
            ],
            what="a draining VM",
        )
        assert draining == [victim]
        assert wait_for(lambda: agent_drain_state(ips[victim])["draining"], what="the agent told to drain")
        assert wait_for(lambda: env.cluster.events("Draining"), what="a Draining event")

        # it keeps its users: still there a few rounds later, while it holds a session
        time.sleep(3)
        assert victim in env.cluster.vm_names()
        status = env.cluster.was()["status"]
        assert status["drainingReplicas"] == 1
        assert status["replicas"] == 2

        push_sessions(ips[victim], 0)  # its last user left
        wait_for(lambda: victim not in env.cluster.vm_names(), what=f"{victim} deleted")
        assert sorted(env.cluster.vm_names()) == sorted(n for n in ips if n != victim)
        assert wait_for(lambda: env.cluster.events("DeletedDrainedVM"), what="a DeletedDrainedVM event")


def test_drain_timeout_removes_a_vm_that_keeps_its_sessions(env: Any) -> None:
    env.apply(
        webappscaling(replicas={"min": 1, "max": 4}, scaleIn={"drain": {"timeoutSeconds": 4, "mode": "Readiness"}})
    )
    with env.operator():
        [(_, ip)] = ready_vms(env, 1).items()
        push_sessions(ip, 15)
        ips = ready_vms(env, 2)
        counts = dict(zip(sorted(ips), [2, 3], strict=True))
        for name, count in counts.items():
            push_sessions(ips[name], count)
        victim = min(counts, key=lambda n: counts[n])
        wait_for(lambda: victim not in env.cluster.vm_names(), timeout=30, what="the drain timeout")
        assert env.cluster.vm_names() == [n for n in ips if n != victim]


def test_killed_operator_converges_without_duplicates_orphans_or_lost_drains(env: Any) -> None:
    env.apply(webappscaling(replicas={"min": 1, "max": 6}))
    with env.operator() as first:
        [(_, ip)] = ready_vms(env, 1).items()
        push_sessions(ip, 45)  # → 5 VMs
        wait_for(lambda: len(env.cluster.vm_names()) > 1, what="the scale-up to start")
        first.kill()  # in the middle of the scale-up: some VMs cloning, maybe not all created
    with env.operator():
        ips = ready_vms(env, 5, timeout=90)
    assert len(set(ips)) == 5

    # every DataVolume belongs to a live VM: none orphaned by the crash
    vms = set(env.cluster.vm_names())
    for dv in env.cluster.items("datavolumes"):
        if dv["metadata"]["name"] != "golden":
            assert dv["metadata"]["ownerReferences"][0]["name"] in vms

    counts = dict(zip(sorted(ips), [9, 9, 9, 9, 1], strict=True))  # 37 → 4 VMs: the 1-session VM drains
    victim = min(counts, key=lambda n: counts[n])
    with env.operator() as second:
        for name, count in counts.items():
            push_sessions(ips[name], count)
        wait_for(
            lambda: (
                "webappscaler.io/draining-since"
                in (env.cluster.get("virtualmachine", victim) or {"metadata": {}})["metadata"].get("annotations", {})
            ),
            what="the drain to start",
        )
        second.kill()  # in the middle of the drain
    since = env.cluster.get("virtualmachine", victim)["metadata"]["annotations"]["webappscaler.io/draining-since"]
    with env.operator():
        time.sleep(3)
        vm = env.cluster.get("virtualmachine", victim)
        assert vm is not None, "a VM with a live session was deleted"
        assert vm["metadata"]["annotations"]["webappscaler.io/draining-since"] == since  # the same drain
        assert agent_drain_state(ips[victim])["draining"]
        assert len(env.cluster.vm_names()) == 5  # no replacement cloned, no other VM drained
        push_sessions(ips[victim], 0)
        wait_for(lambda: victim not in env.cluster.vm_names(), what="the resumed drain to finish")
        assert len(env.cluster.vm_names()) == 4


def test_deleting_the_webappscaling_collects_everything_it_owns(env: Any) -> None:
    env.apply(webappscaling(replicas={"min": 2, "max": 4}, warmPool={"size": 1}))
    with env.operator():
        wait_for(lambda: len(env.cluster.vms()) == 3, what="2 VMs and 1 warm VM")
        wait_for(lambda: len(env.cluster.ready_ips()) == 2, what="the 2 running VMs ready")
        owned = {
            "virtualmachines": set(env.cluster.vm_names()),
            "datavolumes": {d["metadata"]["name"] for d in env.cluster.items("datavolumes")} - {"golden"},
        }
        assert len(owned["datavolumes"]) == 3
        env.kubectl("delete", "webappscaling", "shop", "-n", env.namespace, "--wait=false")

        def gone() -> bool:
            left = (
                env.cluster.vms()
                + env.cluster.items("virtualmachineinstances")
                + [d for d in env.cluster.items("datavolumes") if d["metadata"]["name"] != "golden"]
            )
            return (
                not left and env.cluster.get("service", "shop") is None and env.cluster.get("ingress", "shop") is None
            )

        wait_for(gone, timeout=60, what="the garbage collector to remove VMs, VMIs, DataVolumes, Service, Ingress")
        assert env.cluster.get("webappscaling", "shop") is None


def test_an_admins_service_and_ingress_in_our_name_are_never_taken_over_or_deleted(env: Any) -> None:
    """A Service and an Ingress named like the WebAppScaling, created by someone else: the operator does not
    re-select, adopt or delete them (Stalled says why), and deleting the WebAppScaling leaves them."""
    admin_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "shop", "labels": {"owner": "admin"}},
        "spec": {"selector": {"app": "payroll"}, "ports": [{"port": 5432}]},
    }
    admin_ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "shop", "labels": {"owner": "admin"}},
        "spec": {"defaultBackend": {"service": {"name": "payroll", "port": {"number": 5432}}}},
    }
    env.apply(admin_service, admin_ingress)
    before = {kind: env.cluster.get(kind, "shop") for kind in ("service", "ingress")}
    env.apply(webappscaling(replicas={"min": 1, "max": 2}, ingress={"enabled": False}))
    with env.operator():
        stalled = wait_for(
            lambda: (c := env.cluster.condition("Stalled")).get("status") == "True" and c,
            what="Stalled True for the admin's Service",
        )
        assert stalled["reason"] == "NameConflict"
        assert f"Service {env.namespace}/shop exists and is not controlled by this WebAppScaling" in stalled["message"]
        ready_vms(env, 1)  # scaling goes on
        time.sleep(2)
        for kind in ("service", "ingress"):  # the Ingress is disabled in the spec: still not deleted
            now = env.cluster.get(kind, "shop")
            assert now is not None, f"the admin's {kind} was deleted"
            assert now["spec"] == before[kind]["spec"]
            assert "ownerReferences" not in now["metadata"]
            assert now["metadata"]["resourceVersion"] == before[kind]["metadata"]["resourceVersion"]
        env.kubectl("delete", "webappscaling", "shop", "-n", env.namespace)
        wait_for(lambda: not env.cluster.vms(), what="the VMs to be collected")
    time.sleep(1)
    assert env.cluster.get("service", "shop") is not None and env.cluster.get("ingress", "shop") is not None


def test_each_vm_has_its_own_drain_token_so_no_vm_can_drain_another(env: Any) -> None:
    env.apply(webappscaling(replicas={"min": 2, "max": 4}))
    with env.operator():
        ips = ready_vms(env, 2)
        a, b = sorted(ips)
        tokens = {}
        for vm in (a, b):
            secret = json.loads(
                env.kubectl("get", "secret", f"{vm}-drain-token", "-n", env.namespace, "-o", "json").stdout
            )
            [owner] = secret["metadata"]["ownerReferences"]
            assert (owner["kind"], owner["name"]) == ("VirtualMachine", vm)
            tokens[vm] = base64.b64decode(secret["data"]["token"]).decode()
        assert tokens[a] != tokens[b]
        assert agent_drain_request(ips[b], tokens[a]) == 401  # a's token does not drain b
        assert agent_drain_state(ips[b])["draining"] is False
        assert agent_drain_request(ips[b], tokens[b], "DELETE") == 200  # b's own token is accepted
        env.kubectl("delete", "webappscaling", "shop", "-n", env.namespace)
        wait_for(
            lambda: (
                env.cluster.get("secret", f"{a}-drain-token") is None
                and env.cluster.get("secret", f"{b}-drain-token") is None
            ),
            what="the token Secrets to go with their VMs",
        )


def test_a_forged_vmi_address_is_never_scraped_or_sent_the_drain_token(env: Any) -> None:
    """VMIs have no status subresource: whoever may update one can write its address. Pointed at the
    operator's loopback, the operator sends neither a scrape nor a drain request (with the bearer token)
    there; it says why in an Event and keeps the VM unscraped."""
    hits: list[tuple[str, str | None]] = []

    class Trap(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._hit()

        def do_POST(self) -> None:
            self._hit()

        def _hit(self) -> None:
            hits.append((self.path, self.headers.get("Authorization")))
            body = b"webapp_active_sessions 999\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 9100), Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    try:
        env.apply(webappscaling(replicas={"min": 1, "max": 4}))
        with env.operator():
            [name] = ready_vms(env, 1)
            forged = json.dumps({"status": {"interfaces": [{"name": "default", "ipAddress": "127.0.0.1"}]}})
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:  # keep it forged, whatever the emulator writes back
                env.kubectl("patch", "vmi", name, "-n", env.namespace, "--type=merge", "-p", forged)
                time.sleep(0.3)
            events = env.kubectl("get", "events", "-n", env.namespace, "-o", "json").stdout
            assert "UntrustedAddress" in events
            assert "VMI address 127.0.0.1 is not its virt-launcher pod's address" in events
            assert env.cluster.was()["status"]["desiredReplicas"] == 1  # 999 sessions never read
    finally:
        trap.shutdown()
        trap.server_close()
    assert hits == []


@pytest.mark.parametrize(
    ("golden", "reason", "message"),
    [
        (None, "GoldenImageNotFound", "DataVolume {ns}/missing does not exist"),
        ("failed", "GoldenImageFailed", "DataVolume {ns}/missing failed"),
    ],
    ids=["missing", "failed"],
)
def test_golden_image_not_ready_creates_no_vm(env: Any, golden: str | None, reason: str, message: str) -> None:
    if golden == "failed":
        env.apply(golden_datavolume("missing", fail=True))
    env.apply(webappscaling(goldenImage={"name": "missing"}, replicas={"min": 2, "max": 4}))
    with env.operator():
        condition = wait_for(
            lambda: (c := env.cluster.condition("GoldenImageReady")).get("reason") == reason and c,
            what=f"GoldenImageReady False/{reason}",
        )
        assert condition["status"] == "False"
        assert message.format(ns=env.namespace) in condition["message"]
        ready = env.cluster.condition("Ready")
        assert ready["status"] == "False" and ready["reason"] == reason
        time.sleep(2)
        assert env.cluster.vms() == []


def test_unreachable_agents_mean_metrics_unavailable_and_no_scale_in(env: Any) -> None:
    # the agents answer on 9100 (readiness), but the spec scrapes 9199 where nothing listens
    spec = webappscaling(replicas={"min": 3, "max": 4})
    spec["spec"]["sessions"]["agent"] = {"port": 9199}
    spec["spec"]["vmTemplate"]["spec"]["readinessProbe"] = {"httpGet": {"port": 9100, "path": "/readyz"}}
    env.apply(spec)
    with env.operator():
        ready_vms(env, 3)
        env.kubectl(
            "patch",
            "webappscaling",
            "shop",
            "-n",
            env.namespace,
            "--type=merge",
            "-p",
            '{"spec":{"replicas":{"min":1}}}',
        )
        condition = wait_for(
            lambda: "(3 of 3 failed)" in (c := env.cluster.condition("MetricsAvailable")).get("message", "") and c,
            what="MetricsAvailable False for all 3 agents",
        )
        assert condition["status"] == "False"
        assert condition["reason"] == "FailedGetSessionMetrics"
        assert "no agent answered (3 of 3 failed)" in condition["message"]
        time.sleep(4)  # several rounds with min lowered to 1 and no data: nothing may go
        assert len(env.cluster.vm_names()) == 3
        assert not any(
            "webappscaler.io/draining-since" in vm["metadata"].get("annotations", {}) for vm in env.cluster.vms()
        )
        assert env.cluster.was()["status"]["desiredReplicas"] == 3


def restricted_kubeconfig(
    kubectl: Kubectl, account: str, directory: Path, rules: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
) -> Path:
    """The shipped RBAC with its ClusterRole's rules passed through `rules`, bound to ServiceAccount
    `webapp-scaler/<account>`: what a cluster admin may have forgotten to grant."""
    documents = list(yaml.safe_load_all((REPO / "manifests" / "default" / "rbac.yaml").read_text()))
    for doc in documents:
        doc["metadata"]["name"] = account
        if doc["kind"] == "ClusterRole":
            doc["rules"] = rules(doc["rules"])
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = account
            doc["subjects"][0]["name"] = account
    kubectl("apply", "-f", str(REPO / "manifests" / "base" / "namespace.yaml"))
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    return service_account_kubeconfig(kubectl, account, directory)


@pytest.fixture(scope="module")
def no_clone_kubeconfig(cluster: DevCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's RBAC without `create datavolumes/source`: what a cluster admin may forget to grant."""
    return restricted_kubeconfig(
        kubectl,
        "webapp-scaler-noclone",
        tmp_path_factory.mktemp("noclone"),
        lambda rules: [r for r in rules if "datavolumes/source" not in r["resources"]],
    )


@pytest.mark.parametrize("allowed", [True, False], ids=["clone-allowed", "clone-not-authorized"])
def test_golden_image_in_another_namespace(
    env: Any, kubectl: Kubectl, no_clone_kubeconfig: Path, operator_kubeconfig: Path, allowed: bool
) -> None:
    images = f"{env.namespace}-images"
    kubectl("create", "namespace", images)
    try:
        apply(kubectl, images, golden_datavolume("shared"))
        env.apply(webappscaling(goldenImage={"name": "shared", "namespace": images}))
        config = operator_kubeconfig if allowed else no_clone_kubeconfig
        with operator(config, env.namespace, env.operator_log):
            if allowed:
                ready_vms(env, 1)
                [vm] = env.cluster.vms()
                source = vm["spec"]["dataVolumeTemplates"][0]["spec"]["source"]
                assert source == {"pvc": {"namespace": images, "name": "shared"}}
            else:
                condition = wait_for(
                    lambda: (
                        (c := env.cluster.condition("GoldenImageReady")).get("reason") == "CloneNotAuthorized" and c
                    ),
                    what="GoldenImageReady False/CloneNotAuthorized",
                )
                assert condition["status"] == "False"
                assert (
                    f"needs 'create' on datavolumes/source (cdi.kubevirt.io) in namespace {images}"
                    in condition["message"]
                )
                time.sleep(2)
                assert env.cluster.vms() == []
    finally:
        kubectl("delete", "namespace", images, "--wait=false")


def test_an_agent_that_cannot_do_the_drain_mode_keeps_its_vm_and_says_why(env: Any) -> None:
    """The spec claims the proxy source, so admission lets RefuseNewSessions through, but the VMs run the
    push source: its agent answers the drain with 409. The VM is neither drained nor deleted, even empty;
    DrainReady and a Warning say why. With the mode the agent can do, the drain runs and the VM goes."""
    spec = webappscaling(replicas={"min": 1, "max": 4})
    spec["spec"]["sessions"]["agent"]["source"] = "proxy"
    spec["spec"]["scaleIn"]["drain"]["mode"] = "RefuseNewSessions"
    env.apply(spec)
    with env.operator():
        [(_, ip)] = ready_vms(env, 1).items()
        push_sessions(ip, 15)
        ips = ready_vms(env, 2)
        counts = dict(zip(sorted(ips), [1, 2], strict=True))  # 3 sessions → 1 VM: the 1-session VM drains
        for name, count in counts.items():
            push_sessions(ips[name], count)
        victim = min(counts, key=lambda n: counts[n])
        drain = wait_for(
            lambda: (c := env.cluster.condition("DrainReady")).get("reason") == "DrainModeUnsupported" and c,
            what="DrainReady False/DrainModeUnsupported",
        )
        assert drain["status"] == "False"
        assert (
            f"VM {victim}: the agent refused drain mode RefuseNewSessions (it supports Readiness)" in drain["message"]
        )
        assert wait_for(lambda: env.cluster.events("DrainModeUnsupported"), what="a DrainModeUnsupported Event")
        push_sessions(ips[victim], 0)  # empty, but never drained: kept
        time.sleep(4)
        assert victim in env.cluster.vm_names()
        assert env.cluster.was()["status"]["drainMode"] == "RefuseNewSessions"

        spec["spec"]["sessions"]["agent"]["source"] = "push"
        spec["spec"]["scaleIn"]["drain"]["mode"] = "Readiness"
        env.apply(spec)
        wait_for(lambda: victim not in env.cluster.vm_names(), what=f"{victim} drained by readiness and deleted")
        assert wait_for(lambda: env.cluster.condition("DrainReady").get("status") == "True", what="DrainReady True")
        assert env.cluster.was()["status"]["drainMode"] == "Readiness"


def test_render_prints_what_the_operator_creates(env: Any, kubectl: Kubectl, tmp_path: Path) -> None:
    """`webapp-scaler render` of a file and the operator's objects for the same file in the cluster: equal,
    but for generated names, uids and what the apiserver adds. For the server-side applied objects, applying
    the rendered one under the operator's field manager changes nothing — nothing left out, nothing added."""
    install_gateway_api(kubectl, "experimental")
    spec = webappscaling(
        replicas={"min": 1, "max": 2},
        ingress={
            "enabled": True,
            "host": "shop.example.test",
            "className": "nginx",
            "stickyCookie": {"maxAgeSeconds": 600},
        },
        route={
            "parentRefs": [{"name": "public", "sectionName": "http"}],
            "hostnames": ["shop.example.test"],
            "retry": {"attempts": 3},
            "sessionPersistence": {"enabled": True},
        },
    )
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = subprocess.run(
        [sys.executable, "-m", "webapp_scaler.cli", "render", "-n", env.namespace, "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered = {doc["kind"]: doc for doc in yaml.safe_load_all(result.stdout) if doc}
    assert set(rendered) == {"VirtualMachine", "Secret", "Service", "Ingress", "HTTPRoute"}

    env.kubectl("apply", "-n", env.namespace, "-f", str(path))
    with env.operator():
        wait_for(
            lambda: (
                env.cluster.vm_names()
                and all(env.cluster.get(kind, "shop") for kind in ("service", "ingress", "httproute"))
                and env.cluster.condition("RouteReady").get("status") == "True"
            ),
            what="a VM, the Service, the Ingress and the HTTPRoute",
        )
        uid = env.cluster.was()["metadata"]["uid"]
        [vm_name] = env.cluster.vm_names()

        def as_created(obj: dict[str, Any]) -> dict[str, Any]:
            """The rendered object with the names and uids only the cluster knows."""
            text = json.dumps(obj).replace("shop-xxxxx", vm_name)
            filled = json.loads(text)
            for ref in filled["metadata"].get("ownerReferences", []):
                if ref["kind"] == "WebAppScaling":
                    ref["uid"] = uid
            return dict(filled)

        for kind in ("Service", "Ingress", "HTTPRoute"):
            wanted = as_created(rendered[kind])
            found = env.cluster.get(kind.lower(), "shop")
            assert differences(wanted, found) == [], kind
            applied = env.kubectl(
                "apply", "--server-side", "--dry-run=server", "--field-manager=webapp-scaler", "--force-conflicts",
                "-n", env.namespace, "-o", "json", "-f", "-",
                input=json.dumps(wanted),
            )  # fmt: skip
            assert without_managed_fields(json.loads(applied.stdout)) == without_managed_fields(found), kind

        wanted_vm = as_created(rendered["VirtualMachine"])
        found_vm = env.cluster.get("virtualmachine", vm_name)
        assert wanted_vm["spec"] == found_vm["spec"]
        assert differences(wanted_vm["metadata"], found_vm["metadata"]) == []
        secret = env.cluster.get("secret", f"{vm_name}-drain-token")
        wanted_secret = as_created(rendered["Secret"])
        assert secret["metadata"]["labels"] == wanted_secret["metadata"]["labels"]
        assert [r["name"] for r in secret["metadata"]["ownerReferences"]] == [vm_name]


def differences(wanted: Any, found: Any, path: str = "") -> list[str]:
    """Where `found` lacks or changed what `wanted` has (the apiserver may add fields of its own, and drops
    an empty map of ObjectMeta such as `annotations: {}`)."""
    if wanted == {} and found is None:
        return []
    if isinstance(wanted, dict) and isinstance(found, dict):
        return [d for key, value in wanted.items() for d in differences(value, found.get(key), f"{path}.{key}")]
    if isinstance(wanted, list) and isinstance(found, list) and len(wanted) == len(found):
        return [
            d for i, (a, b) in enumerate(zip(wanted, found, strict=True)) for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if wanted == found else [f"{path}: rendered {wanted!r}, in the cluster {found!r}"]


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
