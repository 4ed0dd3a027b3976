"""The VirtualMachine of one scaled replica: the user's vmTemplate plus a cloned root disk.

KubeVirt facts this relies on: `spec.dataVolumeTemplates[]` makes KubeVirt create one DataVolume per VM,
named exactly as given (so the name embeds the VM name); `spec.template.metadata.labels` are copied to
the VMI and its virt-launcher pod, so the Service selecting LABEL_SCALING reaches the VM;
`runStrategy: Halted` keeps a warm-pool VM cloned but stopped.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from webapp_scaler import naming
from webapp_scaler.constants import (
    ANNOTATION_WARM,
    DRAIN_TOKEN_KEY,
    DRAIN_TOKEN_VOLUME,
    KUBEVIRT_GROUP,
    KUBEVIRT_VERSION,
)
from webapp_scaler.resources.owner import controller_reference, owner_reference, vm_labels
from webapp_scaler.webappscaling import GoldenImageSpec, WebAppScaling


def build_virtualmachine(owner: WebAppScaling, vm_name: str, *, warm: bool = False) -> dict[str, Any]:
    """The VM manifest for `vm_name`, owned by `owner`."""
    spec = owner.spec
    template = spec.workload.vm_template
    root_disk = template.root_disk_name
    dv_name = naming.root_datavolume_name(vm_name, root_disk)
    labels = vm_labels(owner, vm_name)

    vmi_spec = copy.deepcopy(dict(template.spec))
    domain = vmi_spec.setdefault("domain", {})
    devices = domain.setdefault("devices", {})
    # the root disk boots first; the user's other disks (cloud-init, data) keep their order after it
    devices["disks"] = [
        {"name": root_disk, "disk": {"bus": "virtio"}, "bootOrder": 1},
        *devices.get("disks", []),
    ]
    vmi_spec["volumes"] = [{"name": root_disk, "dataVolume": {"name": dv_name}}, *vmi_spec.get("volumes", [])]
    if spec.workload.drain_token is None:
        # the VM's own drain token, from the Secret the operator creates for it (build_drain_token_secret):
        # a token per VM, so no VM can drain another
        devices["disks"].append({"name": DRAIN_TOKEN_VOLUME, "disk": {"bus": "virtio"}, "serial": "drain-token"})
        secret = naming.drain_token_secret_name(vm_name)
        vmi_spec["volumes"].append({"name": DRAIN_TOKEN_VOLUME, "secret": {"secretName": secret}})
    if "readinessProbe" not in vmi_spec:
        # a drained agent fails /readyz, which takes the VM out of the Service for new users
        vmi_spec["readinessProbe"] = {
            "httpGet": {"port": spec.scaling.sessions.agent.port, "path": "/readyz"},
            "periodSeconds": 2,
            "failureThreshold": 1,
        }

    annotations = {ANNOTATION_WARM: "true"} if warm else {}
    return {
        "apiVersion": f"{KUBEVIRT_GROUP}/{KUBEVIRT_VERSION}",
        "kind": "VirtualMachine",
        "metadata": {
            "name": vm_name,
            "namespace": owner.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "runStrategy": "Halted" if warm else "Always",
            "dataVolumeTemplates": [build_root_datavolume_template(spec.workload.golden_image, dv_name, labels)],
            "template": {
                "metadata": {
                    "labels": {**template.labels, **labels},
                    "annotations": dict(template.annotations),
                },
                "spec": vmi_spec,
            },
        },
    }


def build_root_datavolume_template(image: GoldenImageSpec, dv_name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A CDI clone of the golden image: `source.pvc` for a DataVolume or PVC (a DataVolume's PVC has its
    name), `sourceRef` for a DataSource. Storage left unset is inferred by CDI from the source."""
    source: dict[str, Any]
    if image.kind == "DataSource":
        source = {"sourceRef": {"kind": "DataSource", "name": image.name, "namespace": image.namespace}}
    else:
        source = {"source": {"pvc": {"namespace": image.namespace, "name": image.name}}}
    storage: dict[str, Any] = {}
    if image.storage.size is not None:
        storage["resources"] = {"requests": {"storage": image.storage.size}}
    if image.storage.storage_class_name:
        storage["storageClassName"] = image.storage.storage_class_name
    if image.storage.access_modes:
        storage["accessModes"] = list(image.storage.access_modes)
    return {
        "metadata": {"name": dv_name, "labels": dict(labels)},
        "spec": {**source, "storage": storage},
    }


def build_drain_token_secret(owner: WebAppScaling, vm: Mapping[str, Any], token: str) -> dict[str, Any]:
    """One VM's drain token, owned by that VM (as the API returned it after the create), so the garbage
    collector removes the Secret with the VM."""
    meta = vm["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": naming.drain_token_secret_name(meta["name"]),
            "namespace": owner.namespace,
            "labels": vm_labels(owner, meta["name"]),
            "ownerReferences": [
                controller_reference(
                    f"{KUBEVIRT_GROUP}/{KUBEVIRT_VERSION}", "VirtualMachine", meta["name"], meta["uid"]
                )
            ],
        },
        "stringData": {DRAIN_TOKEN_KEY: token},
    }
