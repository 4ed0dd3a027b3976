"""Absurd agent answers against the real operator process, the real apiserver and the emulator's real agents.

Found on the dev cluster: one agent reporting 1e308 scaled a fleet from 3 to 7 VMs and the status patch was
then refused (status.vms[].sessions is an integer); the same on every VM summed to infinity and every round
died with OverflowError. Here the push agents are told such counts (their push API takes any non-negative
integer, as an application with a bug could send) and the operator must stay up, keep the count (never scale
in on invalid data), say so in MetricsAvailable and in one Warning Event per VM, and keep writing a status
the apiserver accepts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    Cluster,
    apply,
    golden_datavolume,
    operator,
    push_sessions,
    wait_for,
    webappscaling,
)
from tests.integration.test_operator import (
    emulator,  # noqa: F401  (the same emulated KubeVirt)
    operator_kubeconfig,  # noqa: F401  (the module's fixture)
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.usefixtures("crds_installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: every VM is a network namespace (CI runs as root)"),
]

ABSURD = 10**308  # the agent exports it as 1e+308
OUT_OF_RANGE = "outside 0..1000000 sessions"


def _ready(cluster: Cluster, count: int) -> dict[str, str]:
    def check() -> dict[str, str] | None:
        names = cluster.vm_names()
        ips = cluster.ready_ips()
        return {n: ips[n] for n in names} if len(names) == count and set(names) <= ips.keys() else None

    return dict(wait_for(check, 90, what=f"{count} ready VMs"))


def _vm_sessions(cluster: Cluster) -> dict[str, Any]:
    return {vm["name"]: vm.get("sessions") for vm in (cluster.was().get("status") or {}).get("vms") or []}


def _warnings_about(cluster: Cluster, vm: str) -> list[dict[str, Any]]:
    return [
        e
        for e in cluster.events("FailedGetSessionMetrics")
        if e.get("type") == "Warning" and f"VM {vm}:" in e.get("message", "") and OUT_OF_RANGE in e["message"]
    ]


def test_absurd_counts_never_scale_and_are_reported(
    kubectl: Kubectl,
    namespace: str,
    emulator: None,  # noqa: F811
    operator_kubeconfig: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    cluster = Cluster(kubectl, namespace)
    apply(kubectl, namespace, golden_datavolume(), webappscaling(replicas={"min": 1, "max": 4}))
    log = tmp_path / "operator.log"
    with operator(operator_kubeconfig, namespace, log) as process:
        [ip] = _ready(cluster, 1).values()
        push_sessions(ip, 15)  # 15 sessions, 10 per VM → 2 VMs
        ips = _ready(cluster, 2)
        healthy, broken = sorted(ips)

        # One absurd agent; the other VM alone points to a scale-in (3 sessions, 2 VMs of 10).
        push_sessions(ips[healthy], 3)
        push_sessions(ips[broken], ABSURD)
        wait_for(
            lambda: _vm_sessions(cluster) == {healthy: 3, broken: None},
            what="status with the broken VM's sessions null (the patch accepted)",
        )
        wait_for(lambda: _warnings_about(cluster, broken), what="a Warning Event naming the broken VM")
        for _ in range(8):  # 8 rounds of 1 s: without the fix 2 → 4 (max) at once
            time.sleep(1)
            assert cluster.vm_names() == sorted(ips), "the fleet changed on an invalid reading"
            assert cluster.was()["status"]["desiredReplicas"] == 2
        metrics = cluster.condition("MetricsAvailable")
        assert metrics["status"] == "True"  # one agent still gives a valid reading
        assert broken in metrics["message"] and OUT_OF_RANGE in metrics["message"]

        # Every agent absurd: the sum would be infinite. No valid reading at all.
        push_sessions(ips[healthy], ABSURD)
        metrics = wait_for(
            lambda: (c := cluster.condition("MetricsAvailable")).get("status") == "False" and c,
            what="MetricsAvailable False",
        )
        assert metrics["reason"] == "FailedGetSessionMetrics"
        assert OUT_OF_RANGE in metrics["message"] and "1e+308" in metrics["message"]
        wait_for(lambda: _warnings_about(cluster, healthy), what="a Warning Event naming the other VM")
        time.sleep(5)  # five more rounds of the same problems
        status = cluster.was()["status"]
        assert status["desiredReplicas"] == 2 and cluster.vm_names() == sorted(ips)
        # no valid count: zero or unknown (null, so absent), never 1e308 or more
        assert status["sessions"].get("current") in (0, None)
        assert _vm_sessions(cluster) == {healthy: None, broken: None}
        assert status["observedGeneration"] == cluster.was()["metadata"]["generation"]
        # one Event per VM per problem, not one per round
        assert len(_warnings_about(cluster, broken)) == 1 and len(_warnings_about(cluster, healthy)) == 1
        for event in (*_warnings_about(cluster, broken), *_warnings_about(cluster, healthy)):
            assert event.get("count", 1) == 1

        # Valid again: the fleet scales as before (here: in, to 1 VM for 3 sessions).
        push_sessions(ips[healthy], 3)
        push_sessions(ips[broken], 0)
        wait_for(lambda: cluster.condition("MetricsAvailable").get("status") == "True", what="metrics back")
        wait_for(lambda: cluster.was()["status"]["desiredReplicas"] == 1, what="the scale-in on valid data")
        assert process.process.poll() is None, "the operator died"
    text = log.read_text(errors="replace")
    assert "OverflowError" not in text and "422" not in text and "Unprocessable" not in text, text[-3000:]
