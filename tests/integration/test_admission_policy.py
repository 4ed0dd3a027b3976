"""The admission policy (manifests/base/admission-policy.yaml) against the real apiserver, with real
users: a tenant ServiceAccount that may manage WebAppScalings in its own namespace only cannot make the
operator clone another namespace's disk or read a Secret the tenant cannot read."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import golden_datavolume, webappscaling
from webapp_scaler_dev.devcluster import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds_installed", "policy_installed")]

POLICY = REPO / "manifests" / "base" / "admission-policy.yaml"


@pytest.fixture(scope="module")
def policy_installed(kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "-f", str(POLICY))
    yield
    kubectl("delete", "-f", str(POLICY), "--wait=false", check=False)


@pytest.fixture
def golden_ns(kubectl: Kubectl) -> Iterator[str]:
    """Another team's namespace with a disk and a Secret in it."""
    name = f"golden-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl("apply", "-n", name, "-f", "-", input=yaml.safe_dump(golden_datavolume("payroll-db-disk")))
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def grant(kubectl: Kubectl, namespace: str, user: str, name: str, rules: list[dict[str, Any]]) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "User", "name": user}],
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([role, binding]))


@pytest.fixture
def tenant(cluster: DevCluster, kubectl: Kubectl, namespace: str, tmp_path: Path) -> Any:
    """kubectl as a tenant ServiceAccount that may manage WebAppScalings (and read its own disks and its
    drain Secret) in `namespace` only."""
    kubectl("create", "serviceaccount", "tenant", "-n", namespace)
    user = f"system:serviceaccount:{namespace}:tenant"
    grant(
        kubectl,
        namespace,
        user,
        "tenant",
        [
            {"apiGroups": ["webappscaler.io"], "resources": ["webappscalings"], "verbs": ["*"]},
            {"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["agent-drain"], "verbs": ["get"]},
        ],
    )
    token = kubectl("create", "token", "tenant", "-n", namespace, "--duration=1h").stdout.strip()
    config = json.loads(kubectl("config", "view", "--raw", "-o", "json").stdout)
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path = tmp_path / "tenant-kubeconfig"
    path.write_text(json.dumps(config))

    class Tenant:
        name = user

        def apply(self, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    str(cluster.binaries["kubectl"]),
                    f"--kubeconfig={path}",
                    f"--cache-dir={tmp_path / 'kubectl-cache'}",
                    "apply",
                    "-n",
                    namespace,
                    "-f",
                    "-",
                ],
                input=yaml.safe_dump(obj),
                capture_output=True,
                text=True,
                check=False,
            )

    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump_all(
            [
                golden_datavolume(),
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "agent-drain"},
                    "stringData": {"token": "t0ken"},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "db-credentials"},
                    "stringData": {"password": "hunter2"},
                },
            ]
        ),
    )
    return Tenant()


def test_a_tenant_may_create_a_webappscaling_of_its_own_disk_and_secret(tenant: Any) -> None:
    result = tenant.apply(webappscaling())
    assert result.returncode == 0, result.stderr


def test_a_tenant_may_name_a_secret_it_can_read_as_the_drain_token(tenant: Any) -> None:
    spec = webappscaling()
    spec["spec"]["sessions"]["agent"] = {"drainTokenSecretRef": {"name": "agent-drain", "key": "token"}}
    result = tenant.apply(spec)
    assert result.returncode == 0, result.stderr


def test_a_tenant_cannot_clone_another_namespaces_disk(tenant: Any, golden_ns: str) -> None:
    result = tenant.apply(webappscaling(goldenImage={"name": "payroll-db-disk", "namespace": golden_ns}))
    assert result.returncode != 0
    assert "ValidatingAdmissionPolicy 'webappscalings.webappscaler.io'" in result.stderr
    assert f"you may not clone disks from namespace {golden_ns}" in result.stderr
    assert "datavolumes/source" in result.stderr


CLONE_FROM = {"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes/source"], "verbs": ["create"]}
READ_DISKS = {"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes"], "verbs": ["get"]}


@pytest.mark.parametrize(
    ("rules", "refused"),
    [([CLONE_FROM, READ_DISKS], None), ([CLONE_FROM], "you may not read DataVolume {ns}/payroll-db-disk")],
    ids=["clone-and-read", "clone-only"],
)
def test_a_tenant_needs_both_the_clone_right_and_the_disk_to_clone_from_that_namespace(
    kubectl: Kubectl, tenant: Any, golden_ns: str, rules: list[dict[str, Any]], refused: str | None
) -> None:
    grant(kubectl, golden_ns, tenant.name, "clone-golden", rules)
    result = tenant.apply(webappscaling(goldenImage={"name": "payroll-db-disk", "namespace": golden_ns}))
    if refused is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0 and refused.format(ns=golden_ns) in result.stderr


def test_a_tenant_cannot_name_a_secret_it_cannot_read_as_the_drain_token(tenant: Any) -> None:
    spec = webappscaling()
    spec["spec"]["sessions"]["agent"] = {"drainTokenSecretRef": {"name": "db-credentials", "key": "password"}}
    result = tenant.apply(spec)
    assert result.returncode != 0
    assert "you may not read Secret" in result.stderr and "/db-credentials" in result.stderr


def test_an_update_is_checked_for_what_it_changes(tenant: Any, golden_ns: str) -> None:
    assert tenant.apply(webappscaling()).returncode == 0
    scaled = webappscaling(replicas={"min": 2, "max": 3})
    result = tenant.apply(scaled)
    assert result.returncode == 0, result.stderr
    moved = webappscaling(
        replicas={"min": 2, "max": 3}, goldenImage={"name": "payroll-db-disk", "namespace": golden_ns}
    )
    result = tenant.apply(moved)
    assert result.returncode != 0 and "you may not clone disks" in result.stderr


def test_the_policy_type_checks_against_the_crd(kubectl: Kubectl) -> None:
    """The apiserver type-checks the expressions against the WebAppScaling schema; a typo in a field name
    would show here as a warning instead of silently letting everything through."""
    deadline = time.monotonic() + 30
    while True:
        out = kubectl("get", "validatingadmissionpolicy", "webappscalings.webappscaler.io", "-o", "json").stdout
        policy = json.loads(out)
        status = policy.get("status") or {}
        if status.get("observedGeneration") == policy["metadata"]["generation"] and "typeChecking" in status:
            break
        assert time.monotonic() < deadline, f"the policy was never type-checked: {status}"
        time.sleep(0.5)
    assert status["typeChecking"].get("expressionWarnings", []) == []
