"""The emulated host as a Node, so virt-launcher pods can be bound to it and EndpointSlices name it."""

from __future__ import annotations

import logging

from emulator import conditions, kube
from emulator.logs import fields

log = logging.getLogger("emulator.node")


def register(api: kube.Kube, name: str, address: str) -> None:
    """Create the Node if needed and report it Ready (no node-lifecycle controller runs to expire it)."""
    if api.get(kube.NODE, "", name) is None:
        api.create(
            kube.NODE,
            "",
            {
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "kubevirt.io/schedulable": "true",
                        "node.webappscaler.io/emulated": "true",
                    },
                },
                "spec": {},
            },
        )
    stamp = kube.now()
    ready = conditions.condition("Ready", True, "KubeletReady", "emulated node is ready")
    status = {
        "conditions": [{**ready, "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
        "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000", "devices.kubevirt.io/kvm": "1k"},
        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000", "devices.kubevirt.io/kvm": "1k"},
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "kubeletVersion": "emulated",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "emulated://1",
            "osImage": "webapp-scaler KubeVirt emulator",
            "kernelVersion": "",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }
    api.patch(kube.NODE, "", name, {"status": status}, status=True)
    log.info("node registered", extra=fields(node=name, address=address))
