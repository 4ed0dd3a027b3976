"""The local control plane is a real one: the controller-manager collects garbage and finishes namespace
deletions, and no process outlives the cluster that started it."""

from __future__ import annotations

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
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == cluster.binaries.kubernetes_version
    assert version["clientVersion"]["gitVersion"] == cluster.binaries.kubernetes_version


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
