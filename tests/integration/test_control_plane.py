"""The local control plane is a real one: the controller-manager collects garbage and finishes namespace
deletions, and no process outlives the cluster that started it."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Kubectl
from webapp_scaler_dev.devcluster import DevCluster, find_binaries
from webapp_scaler_dev.devcluster.binaries import TOOLS
from webapp_scaler_dev.devcluster.cluster import _pid_runs

pytestmark = pytest.mark.cluster


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.3) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_server_reports_the_pinned_version(cluster: DevCluster) -> None:
    """The pinned minor release; the exact patch when built here (a borrowed binary may differ in patch)."""
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    own = subprocess.run([cluster.binaries["kube-apiserver"], "--version"], capture_output=True, text=True)
    assert own.stdout.split()[-1] == version["serverVersion"]["gitVersion"]
    minor = cluster.binaries.kubernetes_version.rsplit(".", 1)[0] + "."
    assert version["serverVersion"]["gitVersion"].startswith(minor)
    assert version["clientVersion"]["gitVersion"].startswith(minor)
    if not (cluster.binaries.directory / "BORROWED").exists():
        assert version["serverVersion"]["gitVersion"] == cluster.binaries.kubernetes_version


def test_the_build_takes_binaries_the_user_has_when_their_versions_fit(tmp_path: Path) -> None:
    """`KUBEBUILDER_ASSETS` (envtest) and `WEBAPP_SCALER_BINARIES` (a directory the user names) are looked
    at before anything is built: a tool of the pinned minor release is copied into the cache, one of
    another release is passed over with a line saying so. With the module proxy off, nothing here could
    have been built."""
    real = find_binaries()
    named, assets, cache = tmp_path / "named", tmp_path / "assets", tmp_path / "cache"
    named.mkdir()
    assets.mkdir()
    old = named / "kube-apiserver"
    old.write_text("#!/bin/sh\necho Kubernetes v1.20.15\n")
    old.chmod(0o755)
    for tool in TOOLS:
        (assets / tool).symlink_to(real[tool])
    env = {
        **os.environ,
        "WEBAPP_SCALER_CACHE": str(cache),
        "WEBAPP_SCALER_BINARIES": str(named),
        "KUBEBUILDER_ASSETS": str(assets),
        "GOPROXY": "off",
    }
    script = Path(__file__).resolve().parents[2] / "hack" / "build-control-plane.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    directory = Path(result.stdout.strip().splitlines()[-1])
    assert directory == cache / "bin" / real.directory.name
    for tool in TOOLS:
        assert filecmp.cmp(directory / tool, real[tool], shallow=False), tool
    assert "kube-apiserver: " + str(old) + " is v1.20.15" in result.stderr
    assert len((directory / "BORROWED").read_text().splitlines()) == len(TOOLS)


def test_deleting_an_owner_collects_what_it_owns(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "owner", "-n", namespace, "--from-literal=a=1")
    owner_uid = kubectl("get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
    }
    kubectl("create", "-f", "-", input=json.dumps(owned))
    kubectl("delete", "configmap", "owner", "-n", namespace)

    def collected() -> bool:
        return kubectl("get", "configmap", "owned", "-n", namespace, check=False).returncode != 0

    assert wait_until(collected), "the garbage collector did not delete the owned ConfigMap"


def test_namespace_deletion_completes(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "doomed")
    kubectl("create", "configmap", "c", "-n", "doomed")
    kubectl("create", "serviceaccount", "sa", "-n", "doomed")
    kubectl("delete", "namespace", "doomed", "--timeout=90s")
    assert kubectl("get", "namespace", "doomed", check=False).returncode != 0


def test_default_service_account_appears_in_a_new_namespace(kubectl: Kubectl, namespace: str) -> None:
    assert wait_until(lambda: kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0)


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    with DevCluster(find_binaries(), workdir=tmp_path / "c") as cluster:
        pids = [c.pid for c in cluster.components]
        assert len(pids) == 3
        assert all(_pid_runs(c.pid, c.name) for c in cluster.components)
    assert not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pids)


def test_killed_parent_takes_the_control_plane_with_it(tmp_path: Path) -> None:
    """A test run that is SIGKILLed (no finalizer runs) still leaves no control plane behind."""
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from pathlib import Path
        from webapp_scaler_dev.devcluster import DevCluster, find_binaries
        cluster = DevCluster(find_binaries(), workdir=Path({str(tmp_path / "c")!r}))
        cluster.start()
        print(json.dumps([c.pid for c in cluster.components]), flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 3
        assert all(_alive(pid) for pid in pids)
        os.kill(parent.pid, signal.SIGKILL)
    assert wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=30)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
