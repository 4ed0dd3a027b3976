"""KubeVirt's virt-controller for VirtualMachines: DataVolumes from templates, the VMI by run strategy,
and the VM status (printableStatus, ready, created, conditions).

Deletion needs nothing here: the VMI and DataVolumes carry controller ownerReferences, so the real
garbage collector removes them with the VM, and the VMI controller stops the guest when its VMI goes.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from emulator import conditions, kube
from emulator.config import EmulatorConfig
from emulator.informer import Store
from emulator.logs import fields

log = logging.getLogger("emulator.virtualmachine")

COMPONENT = "virtualmachine-controller"
FINAL_PHASES = ("Succeeded", "Failed")
RUNNING_STRATEGIES = ("Always", "RerunOnFailure", "Once")


def run_strategy(vm: kube.Obj) -> str:
    """`spec.runStrategy`, or the deprecated `spec.running` mapped as KubeVirt does."""
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return str(spec["runStrategy"])
    return "Always" if spec.get("running") else "Halted"


def printable_status(vm: kube.Obj, vmi: kube.Obj | None, dv_phases: list[str], strategy: str) -> str:
    """KubeVirt's printableStatus, checked in KubeVirt's order."""
    vmi_phase = (vmi.get("status") or {}).get("phase", "") if vmi else ""
    if vm["metadata"].get("deletionTimestamp"):
        return "Terminating"
    if (
        vmi is not None
        and vmi_phase not in FINAL_PHASES
        and (vmi["metadata"].get("deletionTimestamp") or strategy == "Halted")
    ):
        return "Stopping"
    if vmi_phase == "Running":
        return "Running"
    if any(phase == "Failed" for phase in dv_phases):
        return "DataVolumeError"
    if any(phase != "Succeeded" for phase in dv_phases):
        return "Provisioning"
    if vmi is not None and vmi_phase not in FINAL_PHASES:
        return "Starting"
    if vmi is None and strategy in RUNNING_STRATEGIES:
        return "Starting"
    return "Stopped"


def build_status(
    vm: kube.Obj, vmi: kube.Obj | None, dvs: list[kube.Obj], strategy: str
) -> tuple[dict[str, Any], list[conditions.Condition]]:
    """The VM status (without timestamps) and its conditions."""
    dv_phases = [(dv.get("status") or {}).get("phase", "") for dv in dvs]
    vmi_phase = (vmi.get("status") or {}).get("phase", "") if vmi else ""
    ready = (
        vmi is not None
        and vmi_phase == "Running"
        and conditions.is_true(vmi, "Ready")
        and not vmi["metadata"].get("deletionTimestamp")
        and strategy != "Halted"
    )
    if vmi is None:
        ready_cond = conditions.condition("Ready", False, "VMINotExists", "VMI does not exist")
    else:
        source = conditions.find(vmi, "Ready")
        if source is None:
            ready_cond = conditions.condition("Ready", False, "GuestNotRunning", "Guest VM is not reported as running")
        else:
            ready_cond = conditions.condition("Ready", ready, source.get("reason", ""), source.get("message", ""))
    all_dvs = all(phase == "Succeeded" for phase in dv_phases)
    conds = [
        ready_cond,
        conditions.condition(
            "DataVolumesReady",
            all_dvs,
            "AllDVsReady" if all_dvs else "NotAllDVsReady",
            "All of the VMI's DVs are bound and ready" if all_dvs else "Not all of the VMI's DVs are ready",
        ),
    ]
    status = {
        "printableStatus": printable_status(vm, vmi, dv_phases, strategy),
        "ready": ready,
        "created": vmi is not None and vmi_phase not in FINAL_PHASES,
        "runStrategy": strategy,
        "observedGeneration": vm["metadata"].get("generation"),
        "desiredGeneration": vm["metadata"].get("generation"),
    }
    return status, conds


class VirtualMachineController:
    def __init__(self, api: kube.Kube, config: EmulatorConfig, vms: Store, vmis: Store, dvs: Store) -> None:
        self.api, self.config = api, config
        self.vms, self.vmis, self.dvs = vms, vmis, dvs

    def reconcile(self, namespace: str, name: str) -> float | None:
        vm = self.vms.get(namespace, name)
        if vm is None:
            return None
        uid = vm["metadata"]["uid"]
        vmi = self.vmis.get(namespace, name)
        foreign = vmi is not None and (kube.controller_of(vmi) or {}).get("uid") != uid
        if foreign:  # a VMI of the same name that is not ours: leave it alone, as KubeVirt does
            vmi = None
        strategy = run_strategy(vm)
        if vm["metadata"].get("deletionTimestamp"):
            self._write_status(vm, vmi, [], strategy)
            return None

        dvs = self._ensure_datavolumes(vm)
        dv_phases = [(dv.get("status") or {}).get("phase", "") for dv in dvs]
        dvs_ready = len(dvs) == len((vm.get("spec") or {}).get("dataVolumeTemplates") or []) and all(
            phase == "Succeeded" for phase in dv_phases
        )

        if vmi is not None and not vmi["metadata"].get("deletionTimestamp"):
            vmi_phase = (vmi.get("status") or {}).get("phase", "")
            restart = vmi_phase in FINAL_PHASES and (
                strategy == "Always" or (strategy == "RerunOnFailure" and vmi_phase == "Failed")
            )
            if strategy == "Halted" or restart:
                self._delete_vmi(vm, vmi, "restarting" if restart else "stopping")
        elif vmi is None and not foreign and strategy in RUNNING_STRATEGIES and dvs_ready:
            vmi = self._create_vmi(vm)

        self._write_status(vm, vmi, dvs, strategy)
        return None

    # ---- DataVolumes -------------------------------------------------------------------------------
    def _ensure_datavolumes(self, vm: kube.Obj) -> list[kube.Obj]:
        meta = vm["metadata"]
        namespace = meta["namespace"]
        found = []
        for template in (vm.get("spec") or {}).get("dataVolumeTemplates") or []:
            tmeta = template.get("metadata") or {}
            dv_name = tmeta["name"]
            dv = self.dvs.get(namespace, dv_name)
            if dv is None:
                body = {
                    "metadata": {
                        "name": dv_name,
                        "namespace": namespace,
                        "labels": dict(tmeta.get("labels") or {}),
                        "annotations": dict(tmeta.get("annotations") or {}),
                        "ownerReferences": [kube.owner_reference(vm, kube.VM)],
                    },
                    "spec": copy.deepcopy(template.get("spec") or {}),
                }
                try:
                    dv = self.api.create(kube.DV, namespace, body)
                except ApiException as error:
                    if not kube.already_exists(error):
                        raise
                    dv = self.api.get(kube.DV, namespace, dv_name)
                    if dv is None:
                        continue
                else:
                    self.dvs.put(dv)
                    log.info(
                        "datavolume created", extra=fields(namespace=namespace, vm=meta["name"], datavolume=dv_name)
                    )
                    self.api.event(
                        vm,
                        kube.VM,
                        reason="SuccessfulDataVolumeCreate",
                        message=f"Created DataVolume: {dv_name}",
                        component=COMPONENT,
                    )
            owner = kube.controller_of(dv)
            if owner is None:  # an orphan of the same name: adopt it, as KubeVirt does
                dv = self.api.patch(
                    kube.DV,
                    namespace,
                    dv_name,
                    {
                        "metadata": {
                            "ownerReferences": [
                                *(dv["metadata"].get("ownerReferences") or []),
                                kube.owner_reference(vm, kube.VM),
                            ]
                        }
                    },
                )
            elif owner.get("uid") != meta["uid"]:
                self.api.event(
                    vm,
                    kube.VM,
                    reason="FailedDataVolumeCreate",
                    warning=True,
                    component=COMPONENT,
                    message=f"DataVolume {dv_name} exists and is owned by another object",
                )
                continue
            found.append(dv)
        return found

    # ---- the VMI -----------------------------------------------------------------------------------
    def _create_vmi(self, vm: kube.Obj) -> kube.Obj | None:
        meta = vm["metadata"]
        template = (vm.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        body = {
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": dict(tmeta.get("labels") or {}),
                "annotations": {
                    **(tmeta.get("annotations") or {}),
                    "kubevirt.io/vm-generation": str(meta.get("generation", 1)),
                },
                "ownerReferences": [kube.owner_reference(vm, kube.VM)],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
            "status": {"phase": "Pending"},
        }
        try:
            vmi = self.api.create(kube.VMI, meta["namespace"], body)
        except ApiException as error:
            if kube.already_exists(error):
                return self.api.get(kube.VMI, meta["namespace"], meta["name"])
            raise
        self.vmis.put(vmi)
        log.info("vmi created", extra=fields(namespace=meta["namespace"], vm=meta["name"]))
        self.api.event(
            vm,
            kube.VM,
            reason="SuccessfulCreate",
            component=COMPONENT,
            message=f"Started the virtual machine by creating the new virtual machine instance {meta['name']}",
        )
        return vmi

    def _delete_vmi(self, vm: kube.Obj, vmi: kube.Obj, why: str) -> None:
        meta = vmi["metadata"]
        if self.api.delete(kube.VMI, meta["namespace"], meta["name"], uid=meta["uid"]):
            log.info("vmi deleted", extra=fields(namespace=meta["namespace"], vm=meta["name"], why=why))
            self.api.event(
                vm,
                kube.VM,
                reason="SuccessfulDelete",
                component=COMPONENT,
                message=f"Stopped the virtual machine by deleting the virtual machine instance {meta['uid']}",
            )

    # ---- status ------------------------------------------------------------------------------------
    def _write_status(self, vm: kube.Obj, vmi: kube.Obj | None, dvs: list[kube.Obj], strategy: str) -> None:
        status, conds = build_status(vm, vmi, dvs, strategy)
        old = vm.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()) and conditions.same(old.get("conditions"), conds):
            return
        meta = vm["metadata"]
        patch = {"status": {**status, "conditions": conditions.merge(old.get("conditions"), conds, kube.now())}}
        try:
            updated = self.api.patch(kube.VM, meta["namespace"], meta["name"], patch, status=True)
        except ApiException as error:
            if kube.not_found(error):
                return
            raise
        self.vms.put(updated)
        if old.get("printableStatus") != status["printableStatus"]:
            log.info(
                "vm status",
                extra=fields(
                    namespace=meta["namespace"],
                    vm=meta["name"],
                    status=status["printableStatus"],
                    was=old.get("printableStatus"),
                    ready=status["ready"],
                ),
            )
