"""Issue 12 against the real operator process: an apiserver that refuses the operator's Ingress must not
stop the round. Admission (CEL) now refuses every bad string the dev cluster found, so the refusal comes
from a ValidatingAdmissionPolicy that denies Ingresses in the test's namespace, as a cluster admin's
policy could: the operator's server-side apply of its own Ingress fails every round, and scaling, the
conditions, the Event and the round-failure metric are what a person sees."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import operator, push_sessions, wait_for, webappscaling
from tests.integration.test_operator import emulator, env, operator_kubeconfig, ready_vms  # noqa: F401

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.usefixtures("crds_installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: every VM is a network namespace (CI runs as root)"),
]
DENIAL = "Ingresses are frozen in this namespace by the cluster admins"


@pytest.fixture
def ingresses_denied(kubectl: Kubectl, namespace: str) -> Iterator[None]:
    """A ValidatingAdmissionPolicy and its binding that deny every Ingress create or update in `namespace`,
    in force once a server-side dry run is refused."""
    name = f"deny-ingress-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["networking.k8s.io"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["ingresses"],
                    }
                ]
            },
            "validations": [{"expression": "false", "message": DENIAL, "reason": "Invalid"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    probe = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "probe"},
        "spec": {"defaultBackend": {"service": {"name": "x", "port": {"number": 80}}}},
    }
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]}))

    def denied() -> bool:
        result = kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(probe), check=False)
        return result.returncode != 0 and DENIAL in result.stderr

    wait_for(denied, 30, what="the policy denying Ingresses in force")
    yield
    kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def round_failures(port: int, namespace: str, step: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = f'webapp_scaler_round_failures_total{{name="shop",namespace="{namespace}",step="{step}"}}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(wanted))


@pytest.mark.usefixtures("ingresses_denied")
def test_a_refused_ingress_stops_nothing_else(env: Any, operator_kubeconfig: Any) -> None:  # noqa: F811
    """Load 35 on one VM (10 per VM): the fleet grows to 4 although every Ingress apply is refused; Stalled
    names the Ingress with the policy's words, one Warning Event says so, and the metric counts the step."""
    env.apply(webappscaling(replicas={"min": 1, "max": 4}))
    port = free_port()
    with operator(operator_kubeconfig, env.namespace, env.operator_log, metrics_port=port):
        [(_, ip)] = ready_vms(env, 1).items()
        push_sessions(ip, 35)
        # the decision itself: before the fix no VM was created in 30 s; rounds are 1 s here
        wait_for(lambda: len(env.cluster.vm_names()) == 4, 30, what="4 VMs created despite the refused Ingress")
        ready_vms(env, 4)
        stalled = wait_for(
            lambda: (c := env.cluster.condition("Stalled")).get("reason") == "IngressRejected" and c,
            what="Stalled IngressRejected",
        )
        assert stalled["status"] == "True"
        assert f"applying Ingress {env.namespace}/shop: the apiserver refused it" in stalled["message"]
        assert DENIAL in stalled["message"]
        ready = env.cluster.condition("Ready")
        assert (ready["status"], ready["reason"]) == ("False", "IngressRejected")
        events = env.cluster.events("IngressRejected")
        assert len(events) == 1 and events[0]["type"] == "Warning", events
        assert DENIAL in events[0]["message"]
        assert env.cluster.get("service", "shop") is not None, "the Service step ran"
        assert env.cluster.get("ingress", "shop") is None
        first = wait_for(lambda: round_failures(port, env.namespace, "ingress"), what="a counted ingress failure")
        wait_for(lambda: round_failures(port, env.namespace, "ingress") > first, 10, what="counted every round")
        assert round_failures(port, env.namespace, "service") == 0
    assert "reconcile round failed" not in env.operator_log.read_text(errors="replace")
