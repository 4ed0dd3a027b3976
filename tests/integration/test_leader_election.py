"""Leader election end to end: two real operator processes, authenticated with the token of the
ServiceAccount of manifests/default/rbac.yaml (so the shipped Lease rights are what they have), against
one WebAppScaling on the real control plane, with the emulator playing KubeVirt and CDI.

Exactly one replica acts (the standby runs no kopf at all, so it creates nothing, posts nothing and logs
no round); a SIGKILLed leader is replaced within the lease duration (plus a generous margin: the machine
is shared) and the fleet converges without a duplicate VM; a SIGTERMed leader releases the Lease, so the
standby takes over well before the lease duration; and two `--standalone` operators report each other.
Each test has a Lease of its own (in the operator's namespace, webapp-scaler), so tests running side by
side never see each other's replicas.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    Cluster,
    OperatorProcess,
    apply,
    golden_datavolume,
    loopback_emulator,
    operator,
    wait_for,
    webappscaling,
)
from tests.integration.test_operator import operator_kubeconfig  # noqa: F401  (the shipped RBAC's token)
from webapp_scaler_dev.devcluster import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds_installed")]

LEASE_NAMESPACE = "webapp-scaler"  # the operator's namespace of manifests/: its Role grants the Lease there
MARGIN = 30.0  # seconds on top of any lease timing: process start-up and a busy machine


@pytest.fixture
def emulator(cluster: DevCluster, namespace: str, tmp_path: Path) -> Iterator[None]:
    """KubeVirt and CDI for this test's namespace (no guest agents: the fleet is held at spec.replicas.min)."""
    with loopback_emulator(cluster.kubeconfig, namespace, tmp_path / "emulator"):
        yield


@pytest.fixture
def lease() -> str:
    return f"lt-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replica(kubeconfig: Path, namespace: str, log: Path, *args: str) -> AbstractContextManager[OperatorProcess]:
    """`webapp-scaler operator` as a real process, as operator_harness starts it, with these flags
    instead of --standalone (the default: leader election)."""
    return operator(kubeconfig, namespace, log, coordination=args)


def holder(kubectl: Kubectl, name: str) -> dict[str, Any]:
    """The Lease's spec ({} while it does not exist)."""
    result = kubectl("get", "lease", name, "-n", LEASE_NAMESPACE, "-o", "json", check=False)
    return dict(json.loads(result.stdout)["spec"]) if result.returncode == 0 else {}


def lease_events(kubectl: Kubectl, name: str) -> list[str]:
    out = kubectl(
        "get", "events", "-n", LEASE_NAMESPACE, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    )
    return [e["message"] for e in json.loads(out.stdout)["items"] if e["involvedObject"]["kind"] == "Lease"]


def healthz(port: int) -> Any:
    """The liveness answer, or None while nothing listens yet (a process still starting on a busy host)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


class Fleet:
    """The VMs of the test namespace, sampled on every wait: the most ever seen at once and every name
    ever created, so a duplicate creation (two acting replicas) cannot hide between two samples."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.most = 0
        self.created: dict[str, set[str]] = {}  # name → uids seen under it

    def sample(self) -> list[str]:
        vms = self.cluster.vms()
        self.most = max(self.most, len(vms))
        for vm in vms:
            self.created.setdefault(vm["metadata"]["name"], set()).add(vm["metadata"]["uid"])
        return sorted(vm["metadata"]["name"] for vm in vms)

    def wait(self, count: int, timeout: float) -> list[str]:
        def exactly() -> list[str] | None:
            names = self.sample()
            return names if len(names) == count else None

        return list(wait_for(exactly, timeout, what=f"{count} VMs"))


def leads(kubectl: Kubectl, lease: str, identities: dict[str, OperatorProcess]) -> str:
    """Wait for one of these replicas to hold the Lease; its identity."""

    def current() -> str | None:
        found = holder(kubectl, lease).get("holderIdentity")
        return found if found in identities else None

    return str(wait_for(current, 60, what="a leader"))


def test_one_replica_acts_and_a_killed_leader_is_replaced_within_the_lease_duration(
    kubectl: Kubectl,
    namespace: str,
    emulator: None,
    operator_kubeconfig: Path,  # noqa: F811
    lease: str,
    tmp_path: Path,
) -> None:
    """Two replicas, one WebAppScaling of max 3: only the leader creates VMs and posts Events, the standby
    answers its liveness probe but runs no round. SIGKILL the leader: the standby holds the Lease within
    the lease duration (plus margin) and the fleet goes on from what the cluster holds: the VM the dead
    leader created are kept, the one more the spec asks for is created once, none twice, never above max."""
    duration = 6
    timing = ["--lease-name", lease, "--lease-duration", str(duration), "--renew-deadline", "4", "--retry-period", "1"]
    cluster = Cluster(kubectl, namespace)
    fleet = Fleet(cluster)
    apply(kubectl, namespace, golden_datavolume(), webappscaling(replicas={"min": 2, "max": 3}))
    ports = {"replica-a": free_port(), "replica-b": free_port()}
    with ExitStack() as stack:
        running = {
            name: stack.enter_context(
                replica(
                    operator_kubeconfig,
                    namespace,
                    tmp_path / f"{name}.log",
                    "--leader-elect",
                    "--lease-identity",
                    name,
                    "--liveness",
                    f"http://127.0.0.1:{ports[name]}/healthz",
                    *timing,
                )
            )
            for name in ports
        }
        first = leads(kubectl, lease, running)
        [second] = [n for n in running if n != first]
        assert fleet.wait(2, 90)

        # the standby: alive for its probe, waiting, and acting on nothing. Its probe names the holder
        # once it has read the Lease (a candidate that lost the race to create it reads it a retry later)
        def standby() -> Any:
            process = running[second].process
            assert process.poll() is None, f"{second} exited ({process.returncode}):\n{running[second].text()}"
            answer = healthz(ports[second])
            return answer if answer and answer.get("leader") else None

        assert wait_for(standby, 60, what=f"the standby naming the leader\n{running[second].text()}") == {
            "standby": True,
            "leader": first,
        }
        time.sleep(3)  # a few of the leader's 1 s rounds, during which the standby must stay quiet
        assert fleet.sample() and fleet.most == 2
        assert f"{first} became leader" in running[first].text()
        standby_log = running[second].text()
        assert "became leader" not in standby_log, standby_log
        assert "is held by replica" in standby_log, standby_log
        # the leader runs kopf and its WebAppScaling's loop; the standby has not even started kopf
        assert "Daemon 'webappscaling_loop' is invoked" in running[first].text()
        assert "Starting Kopf" not in standby_log and "webappscaling_loop" not in standby_log, standby_log
        assert f"{first} became leader" in lease_events(kubectl, lease)
        assert holder(kubectl, lease)["leaseTransitions"] == 0

        running[first].kill()  # SIGKILL: no release, the Lease must expire
        killed_at = time.monotonic()
        wait_for(
            lambda: holder(kubectl, lease).get("holderIdentity") == second,
            duration + MARGIN,
            what=f"{second} taking over\n{running[second].text()}",
        )
        took = time.monotonic() - killed_at
        assert took < duration + MARGIN
        assert holder(kubectl, lease)["leaseTransitions"] == 1
        assert f"{second} became leader" in running[second].text()

        kubectl(
            "patch", "webappscaling", "shop", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":{"min":3}}}'
        )
        names = fleet.wait(3, 90)
        time.sleep(3)  # rounds of the new leader on a converged fleet: nothing more is created
        assert fleet.sample() == names
        assert fleet.most == 3  # never above spec.replicas.max
        assert all(len(uids) == 1 for uids in fleet.created.values()), fleet.created  # none recreated
        assert len(fleet.created) == 3  # and no VM beyond the three ever existed
        assert running[second].process.poll() is None


def test_a_clean_shutdown_releases_the_lease_so_the_standby_takes_over_at_once(
    kubectl: Kubectl,
    namespace: str,
    emulator: None,
    operator_kubeconfig: Path,  # noqa: F811
    lease: str,
    tmp_path: Path,
) -> None:
    """SIGTERM the leader: kopf stops its handlers, then the leader clears holderIdentity and exits 0.
    With a 30 s lease, a standby that had to wait for expiry would need about 30 s from the last renewal
    it saw; after the release it takes over after a retry period or two."""
    duration = 30
    timing = ["--lease-name", lease, "--lease-duration", str(duration), "--renew-deadline", "20", "--retry-period", "1"]
    timing += ["--liveness", "off"]
    cluster = Cluster(kubectl, namespace)
    apply(kubectl, namespace, golden_datavolume(), webappscaling(replicas={"min": 1, "max": 2}))
    with ExitStack() as stack:
        running = {
            name: stack.enter_context(
                replica(operator_kubeconfig, namespace, tmp_path / f"{name}.log", "--lease-identity", name, *timing)
            )
            for name in ("replica-a", "replica-b")
        }
        first = leads(kubectl, lease, running)
        [second] = [n for n in running if n != first]
        wait_for(lambda: len(cluster.vms()) == 1, 90, what="the leader's VM")
        wait_for(lambda: "is held by" in running[second].text(), 30, what="the standby waiting")

        running[first].process.terminate()
        stopped_at = time.monotonic()
        assert running[first].process.wait(60) == 0, running[first].text()
        assert f"{first} released Lease" in running[first].text()
        wait_for(
            lambda: holder(kubectl, lease).get("holderIdentity") == second,
            duration,
            what=f"{second} taking over the released Lease\n{running[second].text()}",
        )
        # well before the lease duration: the release, not the expiry, let it in
        assert time.monotonic() - stopped_at < duration - 5
        assert holder(kubectl, lease)["leaseDurationSeconds"] == duration  # the new leader's own term
        time.sleep(3)
        assert len(cluster.vms()) == 1  # the new leader keeps the fleet it found


def test_two_standalone_operators_report_each_other(
    kubectl: Kubectl,
    namespace: str,
    operator_kubeconfig: Path,  # noqa: F811
    lease: str,
    tmp_path: Path,
) -> None:
    """Two `--standalone` operators on the same namespace (a second Deployment by mistake, say) both act;
    each claims the Lease every retry period, sees the other's claims and logs an error. A third one on
    another namespace shares the Lease but not the scope: it reports nothing."""
    flags = ["--standalone", "--lease-name", lease, "--retry-period", "1", "--liveness", "off"]
    other = f"{namespace}-other"
    kubectl("create", "namespace", other)
    try:
        with (
            replica(operator_kubeconfig, namespace, tmp_path / "a.log", "--lease-identity", "alone-a", *flags) as a,
            replica(operator_kubeconfig, namespace, tmp_path / "b.log", "--lease-identity", "alone-b", *flags) as b,
            replica(operator_kubeconfig, other, tmp_path / "c.log", "--lease-identity", "alone-c", *flags) as c,
        ):
            for one, them in ((a, "alone-b"), (b, "alone-a")):
                wait_for(
                    lambda one=one, them=them: (
                        f"another operator acts on the WebAppScalings of this standalone operator: {them}" in one.text()
                    ),
                    60,
                    what=f"a report of {them}\n{one.text()}",
                )
            spec = holder(kubectl, lease)
            assert spec.get("holderIdentity") in {"alone-a", "alone-b", "alone-c"}
            assert "another operator acts" not in c.text(), c.text()
            assert "Forbidden" not in a.text() + b.text() + c.text()  # the shipped Role covers the claim
    finally:
        kubectl("delete", "namespace", other, "--wait=false", check=False)
