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
    KUBEVIRT_GROUP,
    KUBEVIRT_VERSION,
    LABEL_VM,
)
from webapp_scaler.resources.owner import common_labels, owner_reference


def build_virtualmachine(owner: Mapping[str, Any], vm_name: str, *, warm: bool = False) -> dict[str, Any]:
    """The VM manifest for `vm_name`, owned by `owner` (a WebAppScaling as read from the API)."""
    spec = owner["spec"]
    template = spec["vmTemplate"]
    root_disk = template.get("rootDiskName", "rootdisk")
    dv_name = naming.root_datavolume_name(vm_name, root_disk)
    labels = {**common_labels(owner), LABEL_VM: vm_name}
    template_meta = template.get("metadata") or {}

    vmi_spec = copy.deepcopy(template["spec"])
    domain = vmi_spec.setdefault("domain", {})
    devices = domain.setdefault("devices", {})
    # the root disk boots first; the user's other disks (cloud-init, data) keep their order after it
    devices["disks"] = [
        {"name": root_disk, "disk": {"bus": "virtio"}, "bootOrder": 1},
        *devices.get("disks", []),
    ]
    vmi_spec["volumes"] = [{"name": root_disk, "dataVolume": {"name": dv_name}}, *vmi_spec.get("volumes", [])]
    if "readinessProbe" not in vmi_spec:
        # a drained agent fails /readyz, which takes the VM out of the Service for new users
        agent = spec.get("sessions", {}).get("agent", {})
        vmi_spec["readinessProbe"] = {
            "httpGet": {"port": agent.get("port", 9100), "path": "/readyz"},
            "periodSeconds": 2,
            "failureThreshold": 1,
        }

    annotations = {ANNOTATION_WARM: "true"} if warm else {}
    return {
        "apiVersion": f"{KUBEVIRT_GROUP}/{KUBEVIRT_VERSION}",
        "kind": "VirtualMachine",
        "metadata": {
            "name": vm_name,
            "namespace": owner["metadata"]["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "runStrategy": "Halted" if warm else "Always",
            "dataVolumeTemplates": [build_root_datavolume_template(owner, dv_name, labels)],
            "template": {
                "metadata": {
                    "labels": {**(template_meta.get("labels") or {}), **labels},
                    "annotations": dict(template_meta.get("annotations") or {}),
                },
                "spec": vmi_spec,
            },
        },
    }


def build_root_datavolume_template(owner: Mapping[str, Any], dv_name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A CDI clone of the golden image: `source.pvc` for a DataVolume or PVC (a DataVolume's PVC has its
    name), `sourceRef` for a DataSource. Storage left unset is inferred by CDI from the source."""
    image = owner["spec"]["goldenImage"]
    namespace = image.get("namespace") or owner["metadata"]["namespace"]
    kind = image.get("kind", "DataVolume")
    source: dict[str, Any]
    if kind == "DataSource":
        source = {"sourceRef": {"kind": "DataSource", "name": image["name"], "namespace": namespace}}
    else:
        source = {"source": {"pvc": {"namespace": namespace, "name": image["name"]}}}
    wanted = image.get("storage") or {}
    storage: dict[str, Any] = {}
    if "size" in wanted:
        storage["resources"] = {"requests": {"storage": str(wanted["size"])}}
    if wanted.get("storageClassName"):
        storage["storageClassName"] = wanted["storageClassName"]
    if wanted.get("accessModes"):
        storage["accessModes"] = list(wanted["accessModes"])
    return {
        "metadata": {"name": dv_name, "labels": dict(labels)},
        "spec": {**source, "storage": storage},
    }
