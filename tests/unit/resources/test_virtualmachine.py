"""build_virtualmachine: the VM and its DataVolume template, checked field by field and against
KubeVirt's and CDI's published definitions for many spec variations."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.unit.resources.published_schema import cdi_errors, kubevirt_errors
from webapp_scaler import webappscaling
from webapp_scaler.resources import build_drain_token_secret, build_virtualmachine


def owner(spec_overrides: dict[str, Any] | None = None, **spec: Any) -> webappscaling.WebAppScaling:
    """A WebAppScaling as the builders get it: parsed, with these spec fields replaced."""
    base: dict[str, Any] = {
        "apiVersion": "webappscaler.io/v1alpha1",
        "kind": "WebAppScaling",
        "metadata": {"name": "shop", "namespace": "prod", "uid": "0f6c2c2e-1111-2222-3333-444455556666"},
        "spec": {
            "goldenImage": {"kind": "DataVolume", "name": "golden"},
            "vmTemplate": {"rootDiskName": "rootdisk", "spec": {"domain": {"devices": {}}}},
            "sessions": {"agent": {"port": 9100}},
        },
    }
    base["spec"].update(copy.deepcopy(spec_overrides or {}))
    base["spec"].update(spec)
    return webappscaling.parse_valid(base)


def example_owners() -> list[tuple[str, webappscaling.WebAppScaling]]:
    found = []
    for path in sorted((REPO / "manifests" / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "WebAppScaling":
                doc["metadata"].update(namespace="prod", uid="0f6c2c2e-1111-2222-3333-444455556666")
                found.append((path.stem, webappscaling.parse_valid(doc)))
    return found


CLOUD_INIT = {
    "domain": {
        "cpu": {"cores": 2, "sockets": 1},
        "memory": {"guest": "2Gi"},
        "resources": {"requests": {"memory": "2Gi", "cpu": "500m"}},
        "devices": {
            "disks": [{"name": "cloudinit", "disk": {"bus": "virtio"}}],
            "interfaces": [{"name": "default", "masquerade": {}}],
        },
    },
    "networks": [{"name": "default", "pod": {}}],
    "volumes": [{"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}}],
    "terminationGracePeriodSeconds": 30,
}

VARIATIONS: list[tuple[str, webappscaling.WebAppScaling, bool]] = [
    ("datavolume-source", owner(), False),
    ("pvc-source", owner(goldenImage={"kind": "PersistentVolumeClaim", "name": "disk"}), False),
    (
        "datasource-source",
        owner(goldenImage={"kind": "DataSource", "name": "ds", "namespace": "images"}),
        False,
    ),
    (
        "storage-everything",
        owner(
            goldenImage={
                "name": "golden",
                "namespace": "images",
                "storage": {"size": "20Gi", "storageClassName": "fast", "accessModes": ["ReadWriteMany"]},
            }
        ),
        False,
    ),
    ("integer-size", owner(goldenImage={"name": "golden", "storage": {"size": 10737418240}}), False),
    ("warm-pool-vm", owner(), True),
    ("cloud-init-and-network", owner(vmTemplate={"rootDiskName": "system", "spec": CLOUD_INIT}), False),
    (
        "own-readiness-probe",
        owner(
            vmTemplate={
                "metadata": {"labels": {"app": "shop"}, "annotations": {"team": "web"}},
                "spec": {**CLOUD_INIT, "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5}},
            }
        ),
        False,
    ),
    *((f"example-{name}", doc, False) for name, doc in example_owners()),
]


@pytest.mark.parametrize(("scaling", "warm"), [(o, w) for _, o, w in VARIATIONS], ids=[i for i, _, _ in VARIATIONS])
def test_vm_validates_against_published_kubevirt_and_cdi_definitions(
    scaling: webappscaling.WebAppScaling, warm: bool
) -> None:
    vm = build_virtualmachine(scaling, f"{scaling.name}-abcde", warm=warm)
    assert kubevirt_errors("v1.VirtualMachine", vm) == []
    for template in vm["spec"]["dataVolumeTemplates"]:
        datavolume = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", **template}
        assert cdi_errors("v1beta1.DataVolume", datavolume) == []


def test_the_published_definitions_do_reject_a_wrong_vm() -> None:
    vm = build_virtualmachine(owner(), "shop-abcde")
    vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"][0]["bootorder"] = 1  # typo: bootOrder
    vm["spec"]["runStrategy"] = 3
    problems = kubevirt_errors("v1.VirtualMachine", vm)
    assert any("bootorder" in p for p in problems)
    assert any(p.startswith("spec.runStrategy") for p in problems)


def test_root_disk_is_a_clone_of_the_golden_image_named_after_the_vm() -> None:
    vm = build_virtualmachine(owner(goldenImage={"name": "golden", "namespace": "images"}), "shop-x1y2z")
    [template] = vm["spec"]["dataVolumeTemplates"]
    assert template["metadata"]["name"] == "shop-x1y2z-rootdisk"
    assert template["spec"]["source"] == {"pvc": {"namespace": "images", "name": "golden"}}
    spec = vm["spec"]["template"]["spec"]
    assert spec["volumes"][0] == {"name": "rootdisk", "dataVolume": {"name": "shop-x1y2z-rootdisk"}}
    assert spec["domain"]["devices"]["disks"][0] == {
        "name": "rootdisk",
        "disk": {"bus": "virtio"},
        "bootOrder": 1,
    }


def test_golden_image_namespace_defaults_to_the_owner_namespace() -> None:
    [template] = build_virtualmachine(owner(), "shop-aaaaa")["spec"]["dataVolumeTemplates"]
    assert template["spec"]["source"]["pvc"]["namespace"] == "prod"


def test_datasource_is_cloned_by_source_ref() -> None:
    scaling = owner(goldenImage={"kind": "DataSource", "name": "ds"})
    [template] = build_virtualmachine(scaling, "shop-aaaaa")["spec"]["dataVolumeTemplates"]
    assert template["spec"]["sourceRef"] == {"kind": "DataSource", "name": "ds", "namespace": "prod"}
    assert "source" not in template["spec"]


def test_labels_owner_and_run_strategy() -> None:
    scaling = owner(vmTemplate={"metadata": {"labels": {"app": "shop"}}, "spec": {"domain": {}}})
    vm = build_virtualmachine(scaling, "shop-aaaaa")
    assert vm["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "webappscaler.io/v1alpha1",
            "kind": "WebAppScaling",
            "name": "shop",
            "uid": "0f6c2c2e-1111-2222-3333-444455556666",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    pod_labels = vm["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app"] == "shop"
    assert pod_labels["webappscaler.io/scaling"] == "shop"
    assert pod_labels["webappscaler.io/vm"] == "shop-aaaaa"
    assert vm["spec"]["runStrategy"] == "Always"
    warm = build_virtualmachine(scaling, "shop-bbbbb", warm=True)
    assert warm["spec"]["runStrategy"] == "Halted"
    assert warm["metadata"]["annotations"] == {"webappscaler.io/warm": "true"}


def test_default_readiness_probe_follows_the_agent_and_a_given_one_is_kept() -> None:
    probe = build_virtualmachine(owner(sessions={"agent": {"port": 9300}}), "shop-a")["spec"]["template"]["spec"]
    assert probe["readinessProbe"]["httpGet"] == {"port": 9300, "path": "/readyz"}
    own = {"tcpSocket": {"port": 8080}}
    spec = build_virtualmachine(owner(vmTemplate={"spec": {"domain": {}, "readinessProbe": own}}), "shop-a")
    assert spec["spec"]["template"]["spec"]["readinessProbe"] == own


def test_builder_does_not_mutate_its_input() -> None:
    scaling = owner(vmTemplate={"spec": CLOUD_INIT})
    before = copy.deepcopy(scaling.spec.workload.vm_template.spec)
    build_virtualmachine(scaling, "shop-a")
    build_virtualmachine(scaling, "shop-b")
    assert scaling.spec.workload.vm_template.spec == before == CLOUD_INIT


def test_each_vm_mounts_its_own_drain_token_unless_the_user_names_a_secret() -> None:
    spec = build_virtualmachine(owner(), "shop-a")["spec"]["template"]["spec"]
    assert {"name": "webappscaler-drain-token", "secret": {"secretName": "shop-a-drain-token"}} in spec["volumes"]
    assert any(d["name"] == "webappscaler-drain-token" for d in spec["domain"]["devices"]["disks"])
    named = owner(sessions={"agent": {"drainTokenSecretRef": {"name": "mine"}}})
    spec = build_virtualmachine(named, "shop-a")["spec"]["template"]["spec"]
    assert all("secret" not in v for v in spec["volumes"])


def test_the_drain_token_secret_belongs_to_its_vm() -> None:
    vm = {"metadata": {"name": "shop-a", "uid": "vm-uid"}}
    secret = build_drain_token_secret(owner(), vm, "t0k3n")
    assert secret["metadata"]["name"] == "shop-a-drain-token" and secret["metadata"]["namespace"] == "prod"
    assert secret["stringData"] == {"token": "t0k3n"}
    [ref] = secret["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("VirtualMachine", "shop-a", "vm-uid", True)
