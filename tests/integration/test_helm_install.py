"""The Helm chart installed with the pinned helm into the real control plane, and the operator running
with nothing but the rights the chart grants.

A chart can render, lint and still fail on a cluster: an object the apiserver rejects, RBAC that misses a
verb the operator uses, an upgrade that never reaches the pods. So the chart is installed for real, the
operator runs as a local process (there is no kubelet) with a token of the chart's ServiceAccount and
reconciles a WebAppScaling (the emulator plays KubeVirt and CDI), an upgrade must roll the Deployment,
and uninstall must leave nothing of the release behind but the CRD it keeps on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import REPO, Kubectl
from tests.integration.operator_harness import (
    Cluster,
    apply,
    golden_datavolume,
    loopback_emulator,
    operator,
    wait_for,
    webappscaling,
)
from webapp_scaler_dev.devcluster import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds_installed")]

CHART = REPO / "charts" / "webapp-scaler"
CRD = "webappscalings.webappscaler.io"


@dataclass
class Helm:
    """The pinned helm against the test cluster only, with its own cache and config directories."""

    binary: Path
    kubeconfig: Path
    home: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        result = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result


@dataclass
class Release:
    name: str
    namespace: str
    helm: Helm
    notes: str = ""

    @property
    def service_account(self) -> str:
        return self.name  # the release's name contains the chart's: the full name is the release name

    def manifest(self) -> list[dict[str, Any]]:
        """What Helm installed for this release (`helm get manifest`)."""
        text = self.helm("get", "manifest", self.name, "-n", self.namespace).stdout
        return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def helm(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(cluster.binaries["helm"], cluster.kubeconfig, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def release(helm: Helm, kubectl: Kubectl) -> Iterator[Release]:
    """The chart with its default values, as release webapp-scaler-<id> in a namespace of its own.

    `--take-ownership`: the session's CRD (and maybe the admission policy) were applied with kubectl before;
    Helm adopts them instead of refusing. The CRD is kept on uninstall (crds.keep), so the other tests of
    the session keep it too."""
    suffix = uuid.uuid4().hex[:6]
    installed = Release(f"webapp-scaler-{suffix}", f"ws-helm-{suffix}", helm)
    result = helm(
        "install", installed.name, str(CHART), "-n", installed.namespace, "--create-namespace", "--take-ownership"
    )
    installed.notes = result.stdout
    yield installed
    helm("uninstall", installed.name, "-n", installed.namespace, "--wait", check=False)
    kubectl("delete", "namespace", installed.namespace, "--wait=false", check=False)


def exists(kubectl: Kubectl, obj: dict[str, Any]) -> bool:
    kind = f"{obj['kind']}.{obj['apiVersion'].split('/')[0]}" if "/" in obj["apiVersion"] else obj["kind"]
    args = ["get", kind, obj["metadata"]["name"], "-o", "name"]
    if obj["metadata"].get("namespace"):
        args += ["-n", obj["metadata"]["namespace"]]
    return kubectl(*args, check=False).returncode == 0


def token_kubeconfig(kubectl: Kubectl, account: str, namespace: str, directory: Path) -> Path:
    """The test cluster's kubeconfig with a token of `namespace/account` as its only credential."""
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    config = json.loads(kubectl("config", "view", "--raw", "-o", "json").stdout)
    config["users"] = [{"name": config["contexts"][0]["context"]["user"], "user": {"token": token}}]
    path = directory / "kubeconfig"
    path.write_text(json.dumps(config))
    return path


def test_rendered_chart_and_kustomize_overlays_pass_server_side_dry_run(helm: Helm, kubectl: Kubectl) -> None:
    """The apiserver itself validates every object: schemas, CEL, RBAC escalation checks."""
    namespace = f"ws-dry-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        for values in ([], ["--set", "watchNamespaces={default}", "--set", "goldenImageNamespaces={kube-public}"]):
            rendered = helm("template", "webapp-scaler", str(CHART), "-n", namespace, *values).stdout
            result = kubectl(
                "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", input=rendered
            )
            assert "serverside-applied (server dry run)" in result.stdout
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    # the overlays' Roles live in their namespaces: those must exist for a dry run (webapp-scaler too)
    kubectl("apply", "-f", str(REPO / "manifests" / "base" / "namespace.yaml"))
    kubectl("apply", "-f", str(REPO / "manifests" / "namespaced" / "namespaces.yaml"))
    try:
        for overlay in ("default", "namespaced"):
            result = kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "--dry-run=server",
                "-k",
                str(REPO / "manifests" / overlay),
            )
            assert "deployment.apps/webapp-scaler serverside-applied (server dry run)" in result.stdout, overlay
    finally:
        kubectl("delete", "-f", str(REPO / "manifests" / "namespaced" / "namespaces.yaml"), "--wait=false", check=False)


def test_install_creates_every_object_of_the_chart(release: Release, kubectl: Kubectl) -> None:
    objects = release.manifest()
    kinds = {o["kind"] for o in objects}
    assert kinds == {
        "ServiceAccount",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",  # the leader election Lease's, in the release's namespace
        "RoleBinding",
        "Service",
        "Deployment",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    missing = [f"{o['kind']}/{o['metadata']['name']}" for o in objects if not exists(kubectl, o)]
    assert missing == []
    # no crds/ folder any more: kopf peering is not used, leader election needs no CRD of its own
    assert release.helm("show", "crds", str(CHART)).stdout.strip() == ""
    [role] = [o for o in objects if o["kind"] == "Role"]
    assert role["metadata"]["namespace"] == release.namespace
    # NOTES.txt: what to apply next, and where to look
    assert "manifests/examples/01-golden-image.yaml" in release.notes, release.notes
    assert "kubectl -n <namespace> get was" in release.notes, release.notes
    crd = json.loads(kubectl("get", "crd", CRD, "-o", "json").stdout)
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release.name
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_operator_with_the_charts_rbac_only_reconciles_a_webappscaling(
    release: Release,
    cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> None:
    """The operator authenticates as the chart's ServiceAccount: a verb missing from the chart's
    ClusterRole would leave the WebAppScaling without status or VMs (or with a Forbidden in the log).
    POD_NAMESPACE is the release's, as the chart's Deployment sets it: the (standalone) operator's claim
    on the Lease there needs the chart's leader election Role."""
    config = token_kubeconfig(kubectl, release.service_account, release.namespace, tmp_path)
    whoami = subprocess.run(
        [
            str(cluster.binaries["kubectl"]),
            f"--kubeconfig={config}",
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert whoami.stdout == f"system:serviceaccount:{release.namespace}:{release.service_account}"

    state = Cluster(kubectl, namespace)
    apply(kubectl, namespace, golden_datavolume(), webappscaling(replicas={"min": 2, "max": 3}))
    workdir = tmp_path / "emulator"
    log = tmp_path / "operator.log"
    with (
        loopback_emulator(cluster.kubeconfig, namespace, workdir),
        operator(config, namespace, log, pod_namespace=release.namespace) as running,
    ):
        wait_for(lambda: len(state.vm_names()) == 2, 60, what=f"2 VMs\n{log.read_text(errors='replace')}")
        generation = state.was()["metadata"]["generation"]
        status = wait_for(
            lambda: (s := state.was().get("status") or {}).get("observedGeneration") == generation and s,
            60,
            what="status.observedGeneration",
        )
        assert status["desiredReplicas"] == 2
        assert state.get("service", "shop") is not None
        # the documented uninstall order: WebAppScalings first, while the operator runs their finalizers
        kubectl("delete", "webappscaling", "shop", "-n", namespace, "--wait=false")
        wait_for(lambda: state.get("webappscaling", "shop") is None, 60, what="the WebAppScaling deleted")
        assert "Forbidden" not in running.text(), running.text()
        lease = json.loads(kubectl("get", "lease", "webapp-scaler", "-n", release.namespace, "-o", "json").stdout)
        assert lease["metadata"]["annotations"]["webappscaler.io/standalone-scope"] == namespace


def test_upgrade_with_a_changed_value_rolls_the_deployment(release: Release, kubectl: Kubectl) -> None:
    """A changed value must reach the pod template, and the deployment controller (the test control plane
    runs it; there is no kubelet, so the pods stay unscheduled) rolls it: a new ReplicaSet of the new
    template gets a replica, a standby, while the old one keeps its own until the new pod is available
    (RollingUpdate with maxUnavailable 0: the leader stays until its successor can take over)."""

    def deployment() -> dict[str, Any]:
        out = kubectl("get", "deployment", release.name, "-n", release.namespace, "-o", "json").stdout
        return dict(json.loads(out))

    before = deployment()
    release.helm(
        "upgrade",
        release.name,
        str(CHART),
        "-n",
        release.namespace,
        "--reuse-values",
        "--set",
        "resources.requests.cpu=200m",
        "--set",
        "extraArgs={--verbose}",
    )
    after = deployment()
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # updated in place, not replaced
    [old] = before["spec"]["template"]["spec"]["containers"]
    [new] = after["spec"]["template"]["spec"]["containers"]
    assert new["resources"]["requests"]["cpu"] == "200m" and old["resources"]["requests"]["cpu"] == "100m"
    assert new["args"] == [*old["args"], "--verbose"]
    assert {k: v for k, v in new.items() if k not in ("resources", "args")} == {
        k: v for k, v in old.items() if k not in ("resources", "args")
    }
    assert after["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }  # leader election: one acts, the new pod stands by until the old one releases the Lease
    history = release.helm("history", release.name, "-n", release.namespace, "-o", "json").stdout
    assert [(r["revision"], r["status"]) for r in json.loads(history)] == [(1, "superseded"), (2, "deployed")]

    def replica_sets() -> dict[str, int]:
        """pod-template-hash → spec.replicas of the Deployment's ReplicaSets."""
        out = json.loads(kubectl("get", "replicasets", "-n", release.namespace, "-o", "json").stdout)
        owned = [
            rs
            for rs in out["items"]
            if any(ref.get("uid") == after["metadata"]["uid"] for ref in rs["metadata"].get("ownerReferences", []))
        ]
        return {rs["metadata"]["labels"]["pod-template-hash"]: rs["spec"]["replicas"] for rs in owned}

    def rolled_out() -> dict[str, int] | None:
        sets = replica_sets()
        return sets if len(sets) == 2 and sorted(sets.values()) == [1, 1] else None

    rolled = wait_for(
        rolled_out,
        timeout=60,
        what="a second ReplicaSet with a surge replica, the first keeping its own",
    )
    time.sleep(2)  # the old replica is never scaled down while the new pod is unavailable
    assert sorted(replica_sets().values()) == [1, 1]
    newest = json.loads(kubectl("get", "deployment", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert newest["status"].get("observedGeneration") == after["metadata"]["generation"]
    assert len(rolled) == 2


def test_uninstall_leaves_nothing_of_the_release_but_the_kept_crd(release: Release, kubectl: Kubectl) -> None:
    objects = release.manifest()
    release.helm("uninstall", release.name, "-n", release.namespace, "--wait")
    left = [f"{o['kind']}/{o['metadata']['name']}" for o in objects if exists(kubectl, o)]
    # helm.sh/resource-policy: keep (crds.keep, the default): deleting the CRD would delete every WebAppScaling
    assert left == [f"CustomResourceDefinition/{CRD}"]
    assert release.helm("status", release.name, "-n", release.namespace, check=False).returncode != 0
    # Helm keeps no release record either
    secrets = kubectl("get", "secrets", "-n", release.namespace, "-l", f"name={release.name},owner=helm", "-o", "name")
    assert secrets.stdout.strip() == ""
