"""Wiring: informers feed a work queue; workers run the CDI, VM and VMI controllers; a stop tears
every guest and network namespace down."""

from __future__ import annotations

import logging
import threading

from emulator import kube, network, node
from emulator.cdi import DataVolumeController
from emulator.config import EmulatorConfig
from emulator.guests import GuestSupervisor
from emulator.informer import Handler, Informer, Reconciler, WorkQueue, run_worker
from emulator.logs import fields
from emulator.virtualmachine import VirtualMachineController
from emulator.vmi import VirtualMachineInstanceController

log = logging.getLogger("emulator")

SWEEP_SECONDS = 2.0
READY_MESSAGE = "emulator ready"


class Emulator:
    def __init__(self, config: EmulatorConfig, api: kube.Kube | None = None) -> None:
        self.config = config
        self.api = api or kube.Kube(config.kubeconfig, events=not config.light)
        self.network = network.build(config)
        self.guests = GuestSupervisor(config.workdir / "guests", release=self.network.detach)
        self.queue = WorkQueue()
        self.stop_event = threading.Event()
        ns = config.namespace
        self.informers = {
            kind.plural: Informer(self.api, kind, ns, self._on_event(kind), self.stop_event)
            for kind in (kube.VM, kube.VMI, kube.DV, kube.DATASOURCE, kube.PVC, kube.POD)
        }
        store = {plural: informer.store for plural, informer in self.informers.items()}
        self.datavolumes = DataVolumeController(
            self.api, config, store["datavolumes"], store["persistentvolumeclaims"], store["datasources"]
        )
        self.vms = VirtualMachineController(
            self.api, config, store["virtualmachines"], store["virtualmachineinstances"], store["datavolumes"]
        )
        self.vmis = VirtualMachineInstanceController(
            self.api, config, store["virtualmachineinstances"], store["pods"], self.guests, self.network
        )
        self.reconcilers: dict[str, Reconciler] = {
            "dv": self.datavolumes.reconcile,
            "vm": self.vms.reconcile,
            "vmi": self.vmis.reconcile,
            "pod": self.vmis.reconcile_pod,
            "pvc": self.datavolumes.reconcile_pvc,
            "datasource": self.datavolumes.reconcile_datasource,
        }

    def run(self) -> None:
        """Until `stop()`: then stop every guest and remove every namespace before returning."""
        workers: list[threading.Thread] = []
        try:
            self.network.prepare()
            node.register(self.api, self.config.node_name, self.network.host_ip())
            for informer in self.informers.values():
                informer.start()
            for informer in self.informers.values():
                while not informer.synced.wait(0.5):
                    if self.stop_event.is_set():
                        return
            workers = [
                threading.Thread(
                    target=run_worker, args=(self.queue, self.reconcilers), name=f"worker-{i}", daemon=True
                )
                for i in range(self.config.workers)
            ]
            for worker in workers:
                worker.start()
            log.info(
                READY_MESSAGE,
                extra=fields(
                    network=self.network.mode,
                    namespace=self.config.namespace or "*",
                    node=self.config.node_name,
                    clone_seconds=self.config.clone_seconds,
                    boot_seconds=self.config.boot_seconds,
                ),
            )
            while not self.stop_event.wait(SWEEP_SECONDS):
                self._sweep()
        finally:
            self.queue.shutdown()
            for worker in workers:
                worker.join(timeout=10)
            stopped = self.guests.stop_all(self.config.stop_grace)
            self.guests.close()
            self.network.shutdown()
            self.api.close()
            log.info("emulator stopped", extra=fields(guests_stopped=len(stopped)))

    def stop(self) -> None:
        self.stop_event.set()

    def _sweep(self) -> None:
        """Guests whose VMI vanished without us seeing the event (a watch gap) are stopped too."""
        vmis = self.informers["virtualmachineinstances"].store
        for guest in self.guests.all():
            vmi = vmis.get(guest.namespace, guest.name)
            if vmi is None or vmi["metadata"]["uid"] != guest.uid:
                self.queue.add(("vmi", guest.namespace, guest.name))

    def _on_event(self, kind: kube.Kind) -> Handler:
        def handle(event: str, obj: kube.Obj) -> None:
            meta = obj.get("metadata") or {}
            namespace, name = meta.get("namespace", ""), meta.get("name", "")
            owner = kube.controller_of(obj)
            if kind is kube.VM:
                self.queue.add(("vm", namespace, name))
            elif kind is kube.VMI:
                self.queue.add(("vmi", namespace, name))
                if owner and owner.get("kind") == "VirtualMachine":
                    self.queue.add(("vm", namespace, owner["name"]))
            elif kind is kube.DV:
                self.queue.add(("dv", namespace, name))
                if owner and owner.get("kind") == "VirtualMachine":
                    self.queue.add(("vm", namespace, owner["name"]))
            elif kind is kube.DATASOURCE:
                self.queue.add(("datasource", namespace, name))
            elif kind is kube.PVC:
                if meta.get("deletionTimestamp"):
                    self.queue.add(("pvc", namespace, name))
                if owner and owner.get("kind") == "DataVolume":
                    self.queue.add(("dv", namespace, owner["name"]))
            elif kind is kube.POD:
                if (obj.get("spec") or {}).get("nodeName") != self.config.node_name:
                    return
                self.queue.add(("pod", namespace, name))
                if owner and owner.get("kind") == "VirtualMachineInstance":
                    self.queue.add(("vmi", namespace, owner["name"]))
            log.debug("event", extra=fields(event=event, kind=kind.kind, namespace=namespace, name=name))

        return handle
