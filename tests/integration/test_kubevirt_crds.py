"""The KubeVirt/CDI stand-in CRDs against the real kube-apiserver.

The apiserver must accept what a cluster with KubeVirt and CDI accepts (KubeVirt's and CDI's own
examples) and reject what it rejects (wrong types, bad quantities, missing required fields, unknown
fields under strict validation), because the operator's manifests are only proven by this test bed.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Kubectl
from webapp_scaler_dev.generate import standin_crds

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds_installed")]

EXAMPLES_DIR = standin_crds.API_DIR / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
GENERATED_KINDS = {(k.group, k.kind) for bundle in standin_crds.BUNDLES for k in bundle.kinds}
CRD_NAMES = sorted(f"{k.plural}.{k.group}" for bundle in standin_crds.BUNDLES for k in bundle.kinds)


def vm(name: str = "web-1") -> dict[str, Any]:
    """A VirtualMachine like the ones the operator builds: a cloned root disk and a cloud-init disk."""
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name},
        "spec": {
            "runStrategy": "Always",
            "dataVolumeTemplates": [
                {
                    "metadata": {"name": f"{name}-root"},
                    "spec": {
                        "sourceRef": {"kind": "DataSource", "name": "golden", "namespace": "images"},
                        "storage": {"resources": {"requests": {"storage": "10Gi"}}},
                    },
                }
            ],
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "shop"}},
                "spec": {
                    "domain": {
                        "cpu": {"cores": 2},
                        "memory": {"guest": "2Gi"},
                        "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                    },
                    "volumes": [{"name": "root", "dataVolume": {"name": f"{name}-root"}}],
                },
            },
        },
    }


def set_path(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `manifest` with the dotted `path` (list items by index) set to `value`."""
    changed = copy.deepcopy(manifest)
    node: Any = changed
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return changed


def apply(kubectl: Kubectl, namespace: str, manifest: dict[str, Any], *flags: str) -> Any:
    return kubectl(
        "apply",
        "--dry-run=server",
        *flags,
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(manifest),
        check=False,
    )


def test_crds_are_established(kubectl: Kubectl) -> None:
    for name in CRD_NAMES:
        crd = json.loads(kubectl("get", "crd", name, "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", (name, crd["status"])
        assert conditions.get("NamesAccepted") == "True", (name, crd["status"])


def explain(kubectl: Kubectl, field: str, within: float = 60.0) -> str:
    """`kubectl explain`, once the apiserver publishes the new kinds (discovery and OpenAPI lag behind
    the Established condition by a moment)."""
    deadline = time.monotonic() + within
    while True:
        result = kubectl("explain", field, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            assert result.returncode == 0, result.stderr
            return str(result.stdout)
        time.sleep(0.5)


def test_explain_shows_kubevirt_descriptions(kubectl: Kubectl) -> None:
    run_strategy = explain(kubectl, "vm.spec.runStrategy")
    assert "Running state indicates the requested running state" in run_strategy
    assert '"RerunOnFailure"' in run_strategy
    storage = explain(kubectl, "dv.spec.storage")
    assert "Storage is the requested storage specification" in storage


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_kubevirt_and_cdi_examples_are_accepted(kubectl: Kubectl, namespace: str, example: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(example.read_text()) if doc]
    kinds = {(doc["apiVersion"].split("/")[0], doc["kind"]) for doc in documents}
    if not kinds <= GENERATED_KINDS:
        pytest.skip(f"no stand-in CRD for {sorted(kinds - GENERATED_KINDS)}")
    result = kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(example))
    assert result.stdout.count("(server dry run)") == len(documents), result.stdout


def test_operator_style_vm_is_accepted(kubectl: Kubectl, namespace: str) -> None:
    result = apply(kubectl, namespace, vm(), "--validate=strict")
    assert result.returncode == 0, result.stderr
    as_bytes = apply(kubectl, namespace, set_path(vm(), "spec.template.spec.domain.memory.guest", 2147483648))
    assert as_bytes.returncode == 0, as_bytes.stderr


INVALID_VMS = [
    pytest.param("spec.runStrategy", 5, 'spec.runStrategy: Invalid value: "integer"', id="runStrategy-number"),
    pytest.param(
        "spec.template.spec.domain.cpu.cores",
        "many",
        "spec.template.spec.domain.cpu.cores",
        id="cores-string",
    ),
    pytest.param(
        "spec.template.spec.domain.memory.guest",
        "lots",
        "spec.template.spec.domain.memory.guest",
        id="bad-quantity",
    ),
    pytest.param(
        "spec.dataVolumeTemplates",
        {"name": "x"},
        'spec.dataVolumeTemplates: Invalid value: "object"',
        id="templates-not-list",
    ),
    pytest.param("spec.template.spec.domain.devices.disks.0.disk.bus", ["virtio"], "disk.bus", id="bus-not-string"),
    pytest.param("spec.template.spec.dnsPolicy", "Sometimes", "spec.template.spec.dnsPolicy", id="enum"),
    pytest.param("spec.template", None, "spec.template: Required value", id="template-required"),
]


@pytest.mark.parametrize(("path", "value", "message"), INVALID_VMS)
def test_wrongly_typed_vm_is_rejected(kubectl: Kubectl, namespace: str, path: str, value: Any, message: str) -> None:
    manifest = set_path(vm(), path, value)
    if value is None:
        parent, _, leaf = path.rpartition(".")
        node: Any = manifest
        for part in parent.split("."):
            node = node[part]
        del node[leaf]
    # --validate=ignore: the schema, not strict field validation, must reject it.
    result = apply(kubectl, namespace, manifest, "--validate=ignore")
    assert result.returncode != 0, result.stdout
    assert message in result.stderr, result.stderr


def test_wrongly_typed_datavolume_is_rejected(kubectl: Kubectl, namespace: str) -> None:
    dv = {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": {"name": "clone"},
        "spec": {
            "source": {"pvc": {"namespace": "images", "name": "golden"}},
            "storage": {"resources": {"requests": {"storage": "10Gi"}}},
        },
    }
    assert apply(kubectl, namespace, dv, "--validate=strict").returncode == 0
    result = apply(kubectl, namespace, set_path(dv, "spec.source.pvc", {"namespace": "images"}), "--validate=ignore")
    assert result.returncode != 0
    assert "spec.source.pvc.name: Required value" in result.stderr, result.stderr
    result = apply(
        kubectl,
        namespace,
        set_path(dv, "spec.storage.accessModes", ["ReadWriteSometimes"]),
        "--validate=ignore",
    )
    assert result.returncode != 0
    assert "spec.storage.accessModes[0]: Unsupported value" in result.stderr, result.stderr


def test_unknown_field_is_reported_under_strict_validation(kubectl: Kubectl, namespace: str) -> None:
    manifest = set_path(vm(), "spec.template.spec.domain.cpu.coresPerSocket", 2)
    strict = apply(kubectl, namespace, manifest, "--validate=strict")
    assert strict.returncode != 0, strict.stdout
    assert 'unknown field "spec.template.spec.domain.cpu.coresPerSocket"' in strict.stderr, strict.stderr
    warned = apply(kubectl, namespace, manifest, "--validate=warn")
    assert warned.returncode == 0, warned.stderr
    assert 'unknown field "spec.template.spec.domain.cpu.coresPerSocket"' in warned.stderr, warned.stderr


def test_template_metadata_is_kept_and_vmi_has_no_status_subresource(kubectl: Kubectl, namespace: str) -> None:
    """Labels on spec.template.metadata reach the VMI (the Service selects them), so they must survive
    pruning; and VMI status is written with the object, as KubeVirt's virt-handler does."""
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(vm("kept")))
    stored = json.loads(kubectl("get", "vm", "kept", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["template"]["metadata"]["labels"] == {"app.kubernetes.io/name": "shop"}
    assert stored["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] == "kept-root"

    vmi = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": "kept"},
        "spec": vm()["spec"]["template"]["spec"],
        "status": {"phase": "Running", "interfaces": [{"ipAddress": "10.0.0.7"}], "nodeName": "node-a"},
    }
    kubectl("create", "-n", namespace, "-f", "-", input=yaml.safe_dump(vmi))
    table = kubectl("get", "vmi", "kept", "-n", namespace).stdout
    assert table.split()[:6] == ["NAME", "AGE", "PHASE", "IP", "NODENAME", "READY"], table
    row = table.splitlines()[1].split()
    assert [row[0], *row[2:5]] == ["kept", "Running", "10.0.0.7", "node-a"], table


def test_stored_crds_stay_well_under_the_etcd_request_limit(kubectl: Kubectl) -> None:
    """etcd refuses values over 1.5 MiB; the stored CRD (with server-side-apply managedFields) must have
    room to spare, or a newer KubeVirt release with a larger API would silently stop installing."""
    for name in CRD_NAMES:
        stored = json.loads(kubectl("get", "crd", name, "-o", "json", "--show-managed-fields").stdout)
        size = len(json.dumps(stored, separators=(",", ":")).encode())  # as stored, not kubectl's indenting
        assert size < 1024 * 1024, (name, size)
