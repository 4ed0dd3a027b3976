"""KubeVirt's VMI path, virt-controller + virt-handler + the kubelet in one: the virt-launcher pod,
scheduling on the emulated node, booting the guest processes, and readiness.

Phases: Pending → Scheduling (pod created) → Scheduled (pod running on the node; boot delay) →
Running (guest processes started, address reported) → Failed (guest exited or its pod vanished).
The readiness probe keeps running, so a drained guest (its agent's /readyz failing) turns the VMI
and the pod not Ready, and the Service's EndpointSlice drops it. A VMI that disappears has its guest
stopped; pods on the emulated node that are being deleted are finalized (the kubelet's job).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from emulator import conditions, kube, probe, timing
from emulator.config import EmulatorConfig
from emulator.guests import GuestSupervisor
from emulator.informer import Store
from emulator.logs import fields
from emulator.network import Network

log = logging.getLogger("emulator.vmi")

HANDLER = "virt-handler"
CONTROLLER = "virtualmachine-controller"
LAUNCHER_IMAGE = "quay.io/kubevirt/virt-launcher:v1.9.0"
POD_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet
FINAL_PHASES = ("Succeeded", "Failed")


def launcher_pod_name(vmi: kube.Obj) -> str:
    """`virt-launcher-<vm>-<5 chars>`; derived from the VMI uid so a retried create cannot double it."""
    digest = hashlib.sha256(vmi["metadata"]["uid"].encode()).digest()
    suffix = "".join(POD_NAME_ALPHABET[b % len(POD_NAME_ALPHABET)] for b in digest[:5])
    return f"virt-launcher-{vmi['metadata']['name']}-{suffix}"


@dataclass
class Readiness:
    ready: bool = False
    successes: int = 0
    failures: int = 0


class VirtualMachineInstanceController:
    def __init__(
        self,
        api: kube.Kube,
        config: EmulatorConfig,
        vmis: Store,
        pods: Store,
        guests: GuestSupervisor,
        network: Network,
    ) -> None:
        self.api, self.config = api, config
        self.vmis, self.pods = vmis, pods
        self.guests, self.network = guests, network
        self._boot_at: dict[str, float] = {}
        self._readiness: dict[str, Readiness] = {}
        self._lock = threading.Lock()

    # ---- VMIs --------------------------------------------------------------------------------------
    def reconcile(self, namespace: str, name: str) -> float | None:
        vmi = self.vmis.get(namespace, name)
        guest = self.guests.get(namespace, name)
        if guest is not None and (
            vmi is None or vmi["metadata"]["uid"] != guest.uid or vmi["metadata"].get("deletionTimestamp")
        ):
            self._stop_guest(namespace, name, "the VMI is gone" if vmi is None else "the VMI is being deleted")
            guest = None
        if vmi is None or vmi["metadata"].get("deletionTimestamp"):
            self._delete_orphan_pods(namespace, name, keep=None)
            return None
        uid = vmi["metadata"]["uid"]
        status = vmi.get("status") or {}
        phase = status.get("phase") or "Pending"
        if phase in FINAL_PHASES:
            self._forget(uid)
            return None

        pod = self.pods.get(namespace, launcher_pod_name(vmi))
        if phase in ("Pending", "Scheduling"):
            self._delete_orphan_pods(namespace, name, keep=uid)  # a namesake VMI's pod, e.g. after a restart
            if pod is None:
                pod = self._create_pod(vmi)
                if pod is None:
                    return 0.5
            self._schedule(vmi, pod)
            return 0.0
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self._fail(vmi, pod, "virt-launcher pod is gone")
            return None
        if phase == "Scheduled":
            with self._lock:
                boot_at = self._boot_at.setdefault(
                    uid,
                    time.monotonic()
                    + timing.jittered(
                        self.config.boot_seconds, self.config.jitter, self.config.seed, namespace, name, "boot"
                    ),
                )
            if time.monotonic() < boot_at:
                return boot_at - time.monotonic()
            self._boot(vmi, pod, preferred_ip=None)
            return 0.0
        # Running
        if guest is None:  # the emulator restarted: the guest died with the old one; boot it again
            ip = ((status.get("interfaces") or [{}])[0]).get("ipAddress")
            self._boot(vmi, pod, preferred_ip=ip)
            return 0.0
        if self.config.light:
            return None  # no guest to probe: Ready from the boot on
        exited = guest.exited()
        if exited:
            self._stop_guest(namespace, name, "a guest process exited")
            self._fail(vmi, pod, f"guest process exited: {exited}")
            return None
        return self._probe(vmi, pod, guest.attachment.ip)

    def _create_pod(self, vmi: kube.Obj) -> kube.Obj | None:
        meta = vmi["metadata"]
        owner = kube.controller_of(vmi)
        vm_name = owner["name"] if owner and owner.get("kind") == "VirtualMachine" else meta["name"]
        spec = vmi.get("spec") or {}
        grace = int(spec.get("terminationGracePeriodSeconds", 180)) + 15
        body = {
            "metadata": {
                "name": launcher_pod_name(vmi),
                "namespace": meta["namespace"],
                "labels": {
                    **(meta.get("labels") or {}),
                    "kubevirt.io": "virt-launcher",
                    "kubevirt.io/created-by": meta["uid"],
                    "vm.kubevirt.io/name": vm_name,
                },
                "annotations": {
                    "kubevirt.io/domain": meta["name"],
                    "kubectl.kubernetes.io/default-container": "compute",
                },
                "ownerReferences": [kube.owner_reference(vmi, kube.VMI)],
            },
            "spec": {
                "nodeName": self.config.node_name,
                "automountServiceAccountToken": False,
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": grace,
                "hostname": spec.get("hostname") or meta["name"],
                "containers": [
                    {
                        "name": "compute",
                        "image": LAUNCHER_IMAGE,
                        "command": ["/usr/bin/virt-launcher-monitor", "--name", meta["name"]],
                        "ports": _pod_ports(spec),
                    }
                ],
            },
        }
        try:
            pod = self.api.create(kube.POD, meta["namespace"], body)
        except ApiException as error:
            if kube.already_exists(error):
                return self.api.get(kube.POD, meta["namespace"], body["metadata"]["name"])
            raise
        self.pods.put(pod)
        log.info(
            "virt-launcher pod created",
            extra=fields(namespace=meta["namespace"], vmi=meta["name"], pod=pod["metadata"]["name"]),
        )
        self.api.event(
            vmi,
            kube.VMI,
            reason="SuccessfulCreate",
            component=CONTROLLER,
            message=f"Created virtual machine pod {pod['metadata']['name']}",
        )
        return pod

    def _schedule(self, vmi: kube.Obj, pod: kube.Obj) -> None:
        """The pod is bound to our node and its container runs: the VMI is Scheduled there."""
        node = self.config.node_name
        self._write_pod(pod, phase="Running", ready=False, pod_ip=None)
        not_ready = conditions.condition("Ready", False, "GuestNotRunning", "Guest VM is not reported as running")
        self._write_vmi(
            vmi,
            {
                "phase": "Scheduled",
                "nodeName": node,
                "activePods": {pod["metadata"]["uid"]: node},
                "qosClass": "Burstable",
                "launcherContainerImageVersion": LAUNCHER_IMAGE,
            },
            [not_ready],
            labels={"kubevirt.io/nodeName": node},
        )

    def _boot(self, vmi: kube.Obj, pod: kube.Obj, preferred_ip: str | None) -> None:
        meta = vmi["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        attachment = self.network.attach(preferred_ip)
        try:
            self.network.announce(attachment, namespace, name, dict(meta.get("labels") or {}))
        except BaseException:
            self.network.detach(attachment)
            raise
        owner = kube.controller_of(vmi)
        vm_name = owner["name"] if owner else name
        volumes = Path() if self.config.light else self._secret_volumes(vmi)
        values = {"ip": attachment.ip, "vm": vm_name, "namespace": namespace, "vmi_uid": uid, "volumes": str(volumes)}
        argvs = [self.network.wrap(argv, attachment) for argv in self.config.guest_argvs(values)]
        env = {"VM_NAME": vm_name, "VM_NAMESPACE": namespace, "VM_IP": attachment.ip, "VMI_UID": uid}
        self.guests.start(namespace, name, uid, attachment, argvs, env)  # frees the address if it fails
        with self._lock:
            self._readiness[uid] = Readiness()
        pod_ip = self.network.pod_ip(attachment)
        light = self.config.light  # no probe will turn it Ready later: it is Ready now
        self._write_pod(pod, phase="Running", ready=light, pod_ip=pod_ip)
        networks = (vmi.get("spec") or {}).get("networks") or [{"name": "default"}]
        interface = {
            "name": networks[0].get("name", "default"),
            "interfaceName": "eth0",
            "ipAddress": attachment.ip,
            "ipAddresses": [attachment.ip],
            "mac": _mac(uid),
            "infoSource": "domain, guest-agent",
            "queueCount": 1,
        }
        ready = (
            conditions.condition("Ready", True)
            if light
            else conditions.condition("Ready", False, "ContainersNotReady", "readiness probe has not passed yet")
        )
        self._write_vmi(
            vmi,
            {"phase": "Running", "interfaces": [interface], "guestOSInfo": {"id": "webapp-emulator"}},
            [ready, conditions.condition("AgentConnected", True)],
        )
        log.info("vmi running", extra=fields(namespace=namespace, vmi=name, ip=attachment.ip, pod_ip=pod_ip))
        self.api.event(vmi, kube.VMI, reason="Started", message="VirtualMachineInstance started.", component=HANDLER)

    def _probe(self, vmi: kube.Obj, pod: kube.Obj, ip: str) -> float:
        meta = vmi["metadata"]
        spec = vmi.get("spec") or {}
        check = probe.from_vmi(spec, self.config)
        passed = probe.check(check, ip)
        with self._lock:
            state = self._readiness.setdefault(meta["uid"], Readiness())
            if passed:
                state.successes, state.failures = state.successes + 1, 0
                if state.successes >= check.success_threshold:
                    state.ready = True
            else:
                state.successes, state.failures = 0, state.failures + 1
                if state.failures >= check.failure_threshold:
                    state.ready = False
            ready = state.ready
        if ready != conditions.is_true(vmi, "Ready"):
            reason = "" if ready else "ContainersNotReady"
            message = "" if ready else f"readiness probe {check.kind} :{check.port}{check.path} failed"
            self._write_vmi(
                vmi,
                {},
                [conditions.condition("Ready", ready, reason, message), conditions.condition("AgentConnected", True)],
            )
            log.info("vmi readiness", extra=fields(namespace=meta["namespace"], vmi=meta["name"], ready=ready))
        if ready != _pod_ready(pod):
            guest = self.guests.get(meta["namespace"], meta["name"])
            self._write_pod(
                pod, phase="Running", ready=ready, pod_ip=self.network.pod_ip(guest.attachment) if guest else None
            )
        return min(check.period, 10.0)

    def _fail(self, vmi: kube.Obj, pod: kube.Obj | None, why: str) -> None:
        meta = vmi["metadata"]
        log.warning("vmi failed", extra=fields(namespace=meta["namespace"], vmi=meta["name"], why=why))
        self._write_vmi(
            vmi, {"phase": "Failed", "reason": why}, [conditions.condition("Ready", False, "GuestNotRunning", why)]
        )
        if pod is not None and not pod["metadata"].get("deletionTimestamp"):
            self._write_pod(pod, phase="Failed", ready=False, pod_ip=None)
        self.api.event(
            vmi,
            kube.VMI,
            reason="Stopped",
            message=f"The VirtualMachineInstance crashed: {why}",
            component=HANDLER,
            warning=True,
        )
        self._forget(meta["uid"])

    def _stop_guest(self, namespace: str, name: str, why: str) -> None:
        guest = self.guests.stop(namespace, name, self.config.stop_grace)
        if guest is not None:
            log.info("vmi stopped", extra=fields(namespace=namespace, vmi=name, why=why))
            self._forget(guest.uid)

    def _forget(self, uid: str) -> None:
        with self._lock:
            self._boot_at.pop(uid, None)
            self._readiness.pop(uid, None)

    def _delete_orphan_pods(self, namespace: str, name: str, keep: str | None) -> None:
        """virt-controller deletes a stopped VMI's pod itself rather than waiting for the garbage
        collector (which may not even know the VMI kind yet right after the CRDs were installed)."""
        for pod in self.pods.objects(namespace):
            meta = pod["metadata"]
            labels = meta.get("labels") or {}
            if (
                labels.get("kubevirt.io") == "virt-launcher"
                and (meta.get("annotations") or {}).get("kubevirt.io/domain") == name
                and labels.get("kubevirt.io/created-by") != keep
                and (pod.get("spec") or {}).get("nodeName") == self.config.node_name
                and self.api.delete(kube.POD, namespace, meta["name"], uid=meta["uid"], grace=0)
            ):
                log.info("virt-launcher pod deleted", extra=fields(namespace=namespace, vmi=name, pod=meta["name"]))

    # ---- pods: the kubelet's part -------------------------------------------------------------------
    def reconcile_pod(self, namespace: str, name: str) -> float | None:
        """A virt-launcher pod on our node being deleted: stop its guest, then let the pod go."""
        pod = self.pods.get(namespace, name)
        if pod is None or not pod["metadata"].get("deletionTimestamp"):
            return None
        if (pod.get("spec") or {}).get("nodeName") != self.config.node_name:
            return None
        labels = pod["metadata"].get("labels") or {}
        guest = self.guests.get(namespace, pod["metadata"].get("annotations", {}).get("kubevirt.io/domain", ""))
        if guest is not None and guest.uid == labels.get("kubevirt.io/created-by"):
            self._stop_guest(guest.namespace, guest.name, "its virt-launcher pod is being deleted")
        if self.api.delete(kube.POD, namespace, name, uid=pod["metadata"]["uid"], grace=0):
            log.info("pod finalized", extra=fields(namespace=namespace, pod=name))
        return None

    # ---- writes ------------------------------------------------------------------------------------
    def _write_vmi(
        self,
        vmi: kube.Obj,
        changes: dict[str, Any],
        conds: list[conditions.Condition],
        labels: dict[str, str] | None = None,
    ) -> None:
        """VMIs have no status subresource: status is patched with the object, as KubeVirt does."""
        meta = vmi["metadata"]
        old = vmi.get("status") or {}
        status: dict[str, Any] = {**changes, "conditions": conditions.merge(old.get("conditions"), conds, kube.now())}
        phase = changes.get("phase")
        if phase and phase != old.get("phase"):
            stamps = list(old.get("phaseTransitionTimestamps") or [])
            stamps.append({"phase": phase, "phaseTransitionTimestamp": kube.now()})
            status["phaseTransitionTimestamps"] = stamps
        patch: dict[str, Any] = {"status": status}
        if labels:
            patch["metadata"] = {"labels": labels}
        try:
            updated = self.api.patch(kube.VMI, meta["namespace"], meta["name"], patch)
        except ApiException as error:
            if kube.not_found(error):
                return
            raise
        self.vmis.put(updated)
        if phase and phase != old.get("phase"):
            log.info(
                "vmi phase",
                extra=fields(namespace=meta["namespace"], vmi=meta["name"], phase=phase, was=old.get("phase")),
            )

    def _secret_volumes(self, vmi: kube.Obj) -> Path:
        """KubeVirt hands a `secret` volume to the guest as a disk it mounts; here the guest gets a directory
        per volume, one file per key (`{volumes}/<volume>/<key>` in the guest command). A Secret that does
        not exist (yet) gives an empty directory, as an optional volume would."""
        meta = vmi["metadata"]
        root: Path = self.config.workdir / "volumes" / str(meta["namespace"]) / str(meta["name"])
        for volume in (vmi.get("spec") or {}).get("volumes") or []:
            secret_name = (volume.get("secret") or {}).get("secretName")
            if not secret_name:
                continue
            directory = root / volume["name"]
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
            secret = self.api.get(kube.SECRET, meta["namespace"], secret_name) or {}
            for key, value in (secret.get("data") or {}).items():
                target = directory / key
                target.write_bytes(base64.b64decode(value))
                target.chmod(0o600)
        return root

    def _write_pod(self, pod: kube.Obj, *, phase: str, ready: bool, pod_ip: str | None) -> None:
        meta = pod["metadata"]
        old = pod.get("status") or {}
        stamp = kube.now()
        started = old.get("startTime") or stamp
        conds = [
            conditions.condition("PodReadyToStartContainers", True),
            conditions.condition("Initialized", True),
            conditions.condition("Ready", ready, "" if ready else "ContainersNotReady"),
            conditions.condition("ContainersReady", ready, "" if ready else "ContainersNotReady"),
            conditions.condition("PodScheduled", True),
        ]
        running = phase == "Running"
        state: dict[str, Any] = (
            {"running": {"startedAt": started}}
            if running
            else {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": stamp}}
        )
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": self.network.host_ip(),
            "hostIPs": [{"ip": self.network.host_ip()}],
            "startTime": started,
            "qosClass": "BestEffort",
            "conditions": conditions.merge(old.get("conditions"), conds, stamp),
            "containerStatuses": [
                {
                    "name": "compute",
                    "image": LAUNCHER_IMAGE,
                    "imageID": LAUNCHER_IMAGE,
                    "containerID": f"emulator://{meta['uid']}",
                    "ready": ready and running,
                    "started": running,
                    "restartCount": 0,
                    "state": state,
                }
            ],
        }
        if pod_ip:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
        try:
            updated = self.api.patch(kube.POD, meta["namespace"], meta["name"], {"status": status}, status=True)
        except ApiException as error:
            if kube.not_found(error):
                return
            raise
        self.pods.put(updated)


def _pod_ready(pod: kube.Obj) -> bool:
    return conditions.is_true(pod, "Ready")


def _pod_ports(spec: dict[str, Any]) -> list[dict[str, Any]]:
    ports = []
    for iface in ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []:
        for port in iface.get("ports") or []:
            entry = {"containerPort": int(port["port"]), "protocol": port.get("protocol", "TCP")}
            if port.get("name"):
                entry["name"] = port["name"]
            ports.append(entry)
    return ports


def _mac(uid: str) -> str:
    digest = hashlib.sha256(uid.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])  # locally administered
