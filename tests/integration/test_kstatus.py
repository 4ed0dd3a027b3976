"""Live WebAppScalings, as the real operator (with its real RBAC) writes them, read by the two readers the
conditions are written for: sigs.k8s.io/cli-utils kstatus (hack/kstatus: status.Compute, what Flux and kpt
wait on) and Argo CD's health (hack/lua-health running the argocd-cm script of manifests/argocd). One
module, so both checks share the emulator and each operator start-up.

kstatus reads, in order: metadata.generation against status.observedGeneration (InProgress when behind),
Reconciling True (InProgress), Stalled True (Failed), then Ready; cli-utils pkg/kstatus/status/generic.go."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration import test_operator as operator_tests
from tests.integration.conftest import REPO, Kubectl
from tests.integration.operator_harness import operator, push_sessions, wait_for, webappscaling
from webapp_scaler_dev.devcluster import DevCluster
from webapp_scaler_dev.devcluster.go_tools import GoTools, go_tools

ARGOCD_CM = REPO / "manifests" / "argocd" / "argocd-cm.yaml"

# the operator tests' fixtures: the emulator with real agents as guests (one per module), the operator's
# service-account kubeconfig, and each test's namespace with a golden image
emulator = operator_tests.emulator
operator_kubeconfig = operator_tests.operator_kubeconfig
env = operator_tests.env
ready_vms = operator_tests.ready_vms

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.usefixtures("crds_installed"),
    pytest.mark.skipif(__import__("os").geteuid() != 0, reason="needs root: every VM is a network namespace"),
]


@pytest.fixture(scope="module")
def tools() -> GoTools:
    return go_tools(build=True)


def kstatus(tools: GoTools, obj: dict[str, Any]) -> tuple[str, str]:
    return _one(tools.kstatus, [], obj)


def argocd_health(tools: GoTools, obj: dict[str, Any]) -> tuple[str, str]:
    return _one(tools.lua_health, ["-configmap", str(ARGOCD_CM)], obj)


def _one(binary: Path, args: list[str], obj: dict[str, Any]) -> tuple[str, str]:
    result = subprocess.run([str(binary), *args], input=json.dumps(obj), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    found = json.loads(line)
    return found["status"], found["message"]


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return dict(c)
    return {}


def test_fresh_settled_missing_golden_image_spec_change_and_pause(env: Any, tools: GoTools) -> None:
    env.apply(webappscaling(replicas={"min": 2, "max": 4}), webappscaling("broken", goldenImage={"name": "missing"}))
    # before any round: no status. Argo CD waits; kstatus has nothing to compare and calls it Current
    fresh = env.cluster.was()
    assert "status" not in fresh
    assert argocd_health(tools, fresh) == ("Progressing", "waiting for the operator's first status")
    with env.operator():
        # the first rounds clone and boot the VMs: Reconciling True, kstatus InProgress, Argo CD Progressing
        booting = wait_for(
            lambda: condition(w := env.cluster.was(), "Reconciling").get("status") == "True" and w,
            what="shop with Reconciling True",
        )
        reconciling = condition(booting, "Reconciling")
        assert booting["status"]["observedGeneration"] == booting["metadata"]["generation"]
        assert condition(booting, "Stalled")["status"] == "False"
        assert kstatus(tools, booting) == ("InProgress", reconciling["message"])
        assert argocd_health(tools, booting) == ("Progressing", reconciling["message"])

        # the missing golden image needs a person: Stalled True, kstatus Failed, Argo CD Degraded
        broken = wait_for(
            lambda: condition(w := env.cluster.was("broken"), "Stalled").get("status") == "True" and w,
            what="broken with Stalled True",
        )
        message = f"DataVolume {env.namespace}/missing does not exist"
        assert (condition(broken, "Stalled")["reason"], condition(broken, "Stalled")["message"]) == (
            "GoldenImageNotFound",
            message,
        )
        assert condition(broken, "Reconciling")["status"] == "False"
        assert kstatus(tools, broken) == ("Failed", message)
        assert argocd_health(tools, broken) == ("Degraded", message)

        # both VMs ready, their agents answering, nothing in flight: Current and Healthy
        for ip in ready_vms(env, 2).values():
            push_sessions(ip, 1)
        settled = wait_for(
            lambda: (
                condition(w := env.cluster.was(), "Reconciling").get("status") == "False"
                and condition(w, "Ready").get("status") == "True"
                and condition(w, "MetricsAvailable").get("status") == "True"
                and w
            ),
            what="shop settled",
        )
        assert condition(settled, "Reconciling")["reason"] == "VMsSettled"
        # kstatus: no Reconciling or Stalled True, generation observed → its Ready fallback (status.go)
        assert kstatus(tools, settled) == ("Current", "Resource is Ready")
        assert argocd_health(tools, settled) == ("Healthy", "2 of 2 VMs ready")

    # a spec change the operator has not seen: the status is of the old generation
    env.kubectl(
        "patch", "was", "shop", "-n", env.namespace, "--type=merge", "-p", '{"spec":{"sessions":{"targetPerVM":20}}}'
    )
    changed = env.cluster.was()
    generation, observed = changed["metadata"]["generation"], changed["status"]["observedGeneration"]
    assert generation == observed + 1
    assert kstatus(tools, changed) == (
        "InProgress",
        f"WebAppScaling generation is {generation}, but latest observed generation is {observed}",
    )
    assert argocd_health(tools, changed) == (
        "Progressing",
        f"the operator has not observed generation {generation} yet: the status is of generation {observed}",
    )

    # paused: Argo CD says Suspended whatever the status; once observed, the held fleet is settled
    env.kubectl("patch", "was", "shop", "-n", env.namespace, "--type=merge", "-p", '{"spec":{"paused":true}}')
    suspended = ("Suspended", "spec.paused is true: the operator takes no scale action")
    assert argocd_health(tools, env.cluster.was()) == suspended
    with env.operator():
        paused = wait_for(
            lambda: (
                (w := env.cluster.was())["status"]["observedGeneration"] == w["metadata"]["generation"]
                and condition(w, "Scaling").get("reason") == "Paused"
                and w
            ),
            what="the paused spec observed",
        )
        assert argocd_health(tools, paused) == suspended
        assert condition(paused, "Reconciling")["status"] == "False"
        assert kstatus(tools, paused) == ("Current", "Resource is Ready")
        assert len(env.cluster.vm_names()) == 2


@pytest.fixture(scope="module")
def no_create_kubeconfig(cluster: DevCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's RBAC without `create` on virtualmachines: every VM create is answered 403."""

    def without_vm_create(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for rule in rules:
            if "virtualmachines" in rule["resources"]:
                rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
        return rules

    return operator_tests.restricted_kubeconfig(
        kubectl, "webapp-scaler-nocreate", tmp_path_factory.mktemp("nocreate"), without_vm_create
    )


def test_forbidden_vm_creates_are_failed_and_degraded(env: Any, tools: GoTools, no_create_kubeconfig: Path) -> None:
    env.apply(webappscaling())
    with operator(no_create_kubeconfig, env.namespace, env.operator_log):
        stalled = wait_for(
            lambda: condition(w := env.cluster.was(), "Stalled").get("reason") == "FailedCreate" and w,
            what="Stalled True/FailedCreate",
        )
        message = condition(stalled, "Stalled")["message"]
        assert condition(stalled, "Stalled")["status"] == "True"
        assert (
            "(HTTP 403)" in message
            and f"'create' on virtualmachines (kubevirt.io) in namespace {env.namespace}" in (message)
        )
        assert kstatus(tools, stalled) == ("Failed", message)
        assert argocd_health(tools, stalled) == ("Degraded", message)
        assert env.cluster.vms() == []
