"""The real local control plane for the integration tests: one per test session.

etcd, kube-apiserver and kube-controller-manager run as real processes on loopback
(`webapp_scaler_dev.devcluster`); nothing here is mocked. The session fixture stops them even when tests
fail, and the processes die with the test run if it is killed.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import emulator
from webapp_scaler_dev.devcluster import DevCluster, find_binaries

REPO = Path(__file__).resolve().parents[2]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    binaries = find_binaries(build=True)
    with DevCluster(binaries, workdir=tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="session")
def kubectl(cluster: DevCluster) -> Kubectl:
    """Run the pinned kubectl against the test cluster: `kubectl("get", "ns")`."""
    return cluster.kubectl


@pytest.fixture(scope="session")
def crds_installed(kubectl: Kubectl) -> None:
    """Our CRD and the KubeVirt/CDI stand-ins, applied and Established."""
    paths = [REPO / "crds", emulator.CRDS_DIR]
    for path in paths:
        if path.exists():
            kubectl("apply", "--server-side", "-f", str(path))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    # the OpenAPI document (kubectl explain, --validate=strict) is published a moment after Established
    deadline = time.monotonic() + 60
    while kubectl("explain", "was.spec.goldenImage", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the WebAppScaling OpenAPI schema was never published"
        time.sleep(0.5)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for it to go)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
