"""CDI's part: DataVolumes clone (or import) into a PVC of the same name, with CDI's phases and progress.

A clone waits in CloneScheduled while its source is missing (reason CloneWithoutSource, as CDI reports
it) or not yet populated, then runs CloneScheduled → CloneInProgress ("N/A", "12.5%", …) → Succeeded
("100.0%") over a seeded, jittered duration. Imports (registry, http, blank, …) do the same with
Import* phases. The PVC is created owned by the DataVolume and marked Bound, as the storage
provisioner would. The annotation `emulator.webappscaler.io/fail: "true"` makes a DataVolume fail.

Progress is derived from a clock kept per DataVolume uid; after an emulator restart it resumes from
the progress recorded in the status.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from emulator import conditions, kube, timing
from emulator.config import EmulatorConfig
from emulator.informer import Store
from emulator.logs import fields

log = logging.getLogger("emulator.cdi")

COMPONENT = "datavolume-controller"
FAIL_ANNOTATION = "emulator.webappscaler.io/fail"
DEFAULT_SIZE = "1Gi"
WAIT_POLL = 0.5  # seconds between looks at a missing or unpopulated clone source
SCHEDULED_SHARE = 0.1  # part of the duration spent in *Scheduled before *InProgress
IMPORT_SOURCES = ("http", "s3", "gcs", "registry", "blank", "imageio", "vddk", "upload", "snapshot")
TERMINAL = ("Succeeded", "Failed")
PVC_PROTECTION = "kubernetes.io/pvc-protection"


@dataclass
class Clock:
    started: float
    duration: float


@dataclass(frozen=True)
class Waiting:
    """The clone cannot start yet."""

    phase: str
    reason: str
    message: str
    bound: bool | None = None  # the Bound condition's status while waiting


@dataclass(frozen=True)
class Source:
    namespace: str
    name: str
    size: str | None


class DataVolumeController:
    def __init__(self, api: kube.Kube, config: EmulatorConfig, dvs: Store, pvcs: Store, datasources: Store) -> None:
        self.api, self.config = api, config
        self.dvs, self.pvcs, self.datasources = dvs, pvcs, datasources
        self._clocks: dict[str, Clock] = {}
        self._lock = threading.Lock()

    def reconcile(self, namespace: str, name: str) -> float | None:
        dv = self.dvs.get(namespace, name)
        if dv is None or dv["metadata"].get("deletionTimestamp"):
            return None
        uid = dv["metadata"]["uid"]
        status = dv.get("status") or {}
        if status.get("phase") in TERMINAL:
            with self._lock:
                self._clocks.pop(uid, None)
            return None
        if (dv["metadata"].get("annotations") or {}).get(FAIL_ANNOTATION) == "true":
            self._write(
                dv,
                "Failed",
                "N/A",
                self._failed_conditions(),
                event=("Error", "DataVolume failed (emulator fail annotation)", True),
            )
            return None

        spec = dv.get("spec") or {}
        source = spec.get("source") or {}
        clone = "pvc" in source or "sourceRef" in spec
        prefix = "Clone" if clone else "Import"
        if clone:
            found = self._clone_source(dv)
            if isinstance(found, Waiting):
                self._wait(dv, found)
                return WAIT_POLL
            origin = f"{found.namespace}/{found.name}"
            size = _requested_size(spec) or found.size or DEFAULT_SIZE
        else:
            kind = next((k for k in IMPORT_SOURCES if k in source), "blank")
            origin = kind
            size = _requested_size(spec) or DEFAULT_SIZE
            if kind == "upload":  # waits for a client to upload, which never comes here
                self._write(dv, "UploadScheduled", "N/A", self._pending_conditions(True, "UploadScheduled"))
                return None

        pvc = self._ensure_pvc(dv, size)
        if pvc is None:
            return 0.2

        clock = self._clock(dv, prefix)
        elapsed = time.monotonic() - clock.started
        scheduled = clock.duration * SCHEDULED_SHARE
        steps = max(1, self.config.progress_steps)
        tick = (clock.duration - scheduled) / steps
        target = f"{namespace}/{name}"
        if elapsed < scheduled:
            message = f"Cloning from {origin} into {target} scheduled" if clone else f"Import into {name} scheduled"
            self._write(
                dv,
                f"{prefix}Scheduled",
                "N/A",
                self._pending_conditions(True, f"{prefix}Scheduled"),
                event=(f"{prefix}Scheduled", message, False),
            )
            return scheduled - elapsed
        step = int((elapsed - scheduled) / tick) if tick > 0 else steps
        if step < steps:
            progress = "N/A" if step == 0 else f"{100.0 * step / steps:.1f}%"
            message = f"Cloning from {origin} into {target} in progress" if clone else f"Import into {name} in progress"
            self._write(
                dv,
                f"{prefix}InProgress",
                progress,
                self._running_conditions(),
                event=(f"{prefix}InProgress", message, False),
            )
            return scheduled + (step + 1) * tick - elapsed
        message = (
            f"Successfully cloned from {origin} into {target}" if clone else f"Successfully imported into PVC {name}"
        )
        self._write(
            dv, "Succeeded", "100.0%", self._succeeded_conditions(name), event=(f"{prefix}Succeeded", message, False)
        )
        with self._lock:
            self._clocks.pop(uid, None)
        log.info("datavolume succeeded", extra=fields(namespace=namespace, name=name, source=origin))
        return None

    # ---- DataSources -------------------------------------------------------------------------------
    def reconcile_datasource(self, namespace: str, name: str) -> float | None:
        """CDI's DataSource controller: Ready once the PVC it points at exists and is populated."""
        datasource = self.datasources.get(namespace, name)
        if datasource is None or datasource["metadata"].get("deletionTimestamp"):
            return None
        pvc_ref = ((datasource.get("spec") or {}).get("source") or {}).get("pvc")
        if pvc_ref is None:
            ready = conditions.condition("Ready", False, "NoSource", "no PVC source the emulator can follow")
        else:
            found = self._populated(pvc_ref.get("namespace") or namespace, pvc_ref["name"])
            if found:
                ready = conditions.condition("Ready", True, "Ready")
            else:
                ready = conditions.condition("Ready", False, "NotFound" if found is None else "CloneScheduled")
        again = None if ready["status"] == "True" else WAIT_POLL
        old = datasource.get("status") or {}
        if conditions.same(old.get("conditions"), [ready]):
            return again
        patch = {
            "status": {
                "source": (datasource.get("spec") or {}).get("source"),
                "conditions": conditions.merge(old.get("conditions"), [ready], kube.now()),
            }
        }
        try:
            self.api.patch(kube.DATASOURCE, namespace, name, patch, status=True)
        except ApiException as error:
            if kube.not_found(error):
                return None
            raise
        log.info("datasource", extra=fields(namespace=namespace, name=name, ready=ready["status"]))
        return again

    def _populated(self, namespace: str, name: str) -> bool | None:
        """True: the PVC exists and holds its data; False: it is still being filled; None: no PVC."""
        pvc = self.pvcs.get(namespace, name)
        if pvc is None:
            return None
        owner = kube.controller_of(pvc)
        if owner and owner.get("kind") == "DataVolume":
            source_dv = self.dvs.get(namespace, owner["name"])
            return source_dv is not None and (source_dv.get("status") or {}).get("phase") == "Succeeded"
        return bool((pvc.get("status") or {}).get("phase") == "Bound")

    # ---- PVC protection ----------------------------------------------------------------------------
    def reconcile_pvc(self, namespace: str, name: str) -> float | None:
        """The pvc-protection controller's part: a deleted PVC no pod uses loses its finalizer.

        The test control plane runs no pvc-protection controller, so without this every PVC (and with
        them their namespaces) would stay Terminating. virt-launcher pods here mount no volumes.
        """
        pvc = self.pvcs.get(namespace, name)
        if pvc is None or not pvc["metadata"].get("deletionTimestamp"):
            return None
        finalizers = list(pvc["metadata"].get("finalizers") or [])
        if PVC_PROTECTION not in finalizers:
            return None
        remaining = [f for f in finalizers if f != PVC_PROTECTION]
        patch = {"metadata": {"finalizers": remaining or None, "resourceVersion": pvc["metadata"]["resourceVersion"]}}
        try:
            self.api.patch(kube.PVC, namespace, name, patch)
        except ApiException as error:
            if kube.not_found(error):
                return None
            raise
        log.info("pvc released", extra=fields(namespace=namespace, name=name))
        return None

    # ---- source ------------------------------------------------------------------------------------
    def _clone_source(self, dv: kube.Obj) -> Source | Waiting:
        namespace = dv["metadata"]["namespace"]
        spec = dv["spec"]
        pvc_ref = (spec.get("source") or {}).get("pvc")
        if pvc_ref is None:
            ref = spec["sourceRef"]
            ds_namespace = ref.get("namespace") or namespace
            datasource = self.datasources.get(ds_namespace, ref["name"])
            if datasource is None:
                return Waiting("Pending", "CloneWithoutSource", f"The source datasource {ref['name']} doesn't exist")
            pvc_ref = ((datasource.get("spec") or {}).get("source") or {}).get("pvc")
            if pvc_ref is None:
                return Waiting(
                    "Pending",
                    "CloneWithoutSource",
                    f"DataSource {ref['name']} has no PVC source the emulator can clone",
                )
            pvc_ref = {"namespace": pvc_ref.get("namespace") or ds_namespace, "name": pvc_ref["name"]}
        src_ns, src_name = pvc_ref.get("namespace") or namespace, pvc_ref["name"]
        source_pvc = self.pvcs.get(src_ns, src_name)
        populated = self._populated(src_ns, src_name)
        if source_pvc is None or populated is None:
            return Waiting("CloneScheduled", "CloneWithoutSource", f"The source pvc {src_name} doesn't exist")
        if not populated:
            return Waiting(
                "CloneScheduled", "CloneScheduled", f"The source pvc {src_name} is not populated yet", bound=False
            )
        capacity = ((source_pvc.get("status") or {}).get("capacity") or {}).get("storage")
        requested = ((source_pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        return Source(src_ns, src_name, capacity or requested)

    def _wait(self, dv: kube.Obj, waiting: Waiting) -> None:
        conds = [
            conditions.condition("Bound", waiting.bound, waiting.reason, waiting.message),
            conditions.condition("Ready", False, waiting.reason),
            conditions.condition("Running", False),
        ]
        self._write(
            dv,
            waiting.phase,
            "N/A",
            conds,
            event=(waiting.reason, waiting.message, waiting.reason == "CloneWithoutSource"),
        )

    # ---- the PVC -----------------------------------------------------------------------------------
    def _ensure_pvc(self, dv: kube.Obj, size: str) -> kube.Obj | None:
        """The target PVC, created and bound; None while it is being created."""
        meta = dv["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        pvc = self.pvcs.get(namespace, name)
        if pvc is None:
            spec = dv.get("spec") or {}
            wanted = spec.get("storage") or spec.get("pvc") or {}
            pvc_spec: dict[str, Any] = {
                "accessModes": list(wanted.get("accessModes") or ["ReadWriteOnce"]),
                "resources": {"requests": {"storage": size}},
                "volumeMode": wanted.get("volumeMode") or "Filesystem",
            }
            if wanted.get("storageClassName"):
                pvc_spec["storageClassName"] = wanted["storageClassName"]
            body = {
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**(meta.get("labels") or {}), "app": "containerized-data-importer"},
                    "annotations": {"cdi.kubevirt.io/createdForDataVolume": meta["uid"]},
                    "ownerReferences": [kube.owner_reference(dv, kube.DV)],
                },
                "spec": pvc_spec,
            }
            try:
                pvc = self.api.create(kube.PVC, namespace, body)
            except ApiException as error:
                if not kube.already_exists(error):
                    raise
                pvc = self.api.get(kube.PVC, namespace, name)
                if pvc is None:
                    return None
            log.info("pvc created", extra=fields(namespace=namespace, name=name, size=size))
        if (pvc.get("status") or {}).get("phase") != "Bound":
            spec = pvc.get("spec") or {}
            storage = (spec.get("resources") or {}).get("requests", {}).get("storage", size)
            pvc = self.api.patch(
                kube.PVC,
                namespace,
                name,
                {
                    "status": {
                        "phase": "Bound",
                        "accessModes": spec.get("accessModes"),
                        "capacity": {"storage": storage},
                    }
                },
                status=True,
            )
        return pvc

    # ---- status ------------------------------------------------------------------------------------
    def _clock(self, dv: kube.Obj, prefix: str) -> Clock:
        meta = dv["metadata"]
        with self._lock:
            clock = self._clocks.get(meta["uid"])
            if clock is None:
                base = self.config.clone_seconds if prefix == "Clone" else self.config.import_seconds
                duration = timing.jittered(base, self.config.jitter, self.config.seed, meta["namespace"], meta["name"])
                done = _fraction_done(dv, self.config.progress_steps)
                clock = Clock(time.monotonic() - done * duration, duration)
                self._clocks[meta["uid"]] = clock
            return clock

    def _write(
        self,
        dv: kube.Obj,
        phase: str,
        progress: str,
        conds: list[conditions.Condition],
        *,
        event: tuple[str, str, bool] | None = None,
    ) -> None:
        status = dv.get("status") or {}
        if (
            status.get("phase") == phase
            and status.get("progress") == progress
            and conditions.same(status.get("conditions"), conds)
        ):
            return
        meta = dv["metadata"]
        patch = {
            "status": {
                "phase": phase,
                "progress": progress,
                "claimName": meta["name"],
                "restartCount": status.get("restartCount", 0),
                "conditions": conditions.merge(status.get("conditions"), conds, kube.now()),
            }
        }
        updated = self.api.patch(kube.DV, meta["namespace"], meta["name"], patch, status=True)
        self.dvs.put(updated)  # the next tick must not rewrite from a stale cache
        if status.get("phase") != phase:
            log.info(
                "datavolume phase",
                extra=fields(namespace=meta["namespace"], name=meta["name"], phase=phase, was=status.get("phase")),
            )
            if event is not None:
                reason, message, warning = event
                self.api.event(updated, kube.DV, reason=reason, message=message, component=COMPONENT, warning=warning)

    @staticmethod
    def _pending_conditions(bound: bool, reason: str) -> list[conditions.Condition]:
        return [
            conditions.condition("Bound", bound, "Bound" if bound else reason),
            conditions.condition("Ready", False, reason),
            conditions.condition("Running", False, reason),
        ]

    @staticmethod
    def _running_conditions() -> list[conditions.Condition]:
        return [
            conditions.condition("Bound", True, "Bound"),
            conditions.condition("Ready", False, "TransferRunning"),
            conditions.condition("Running", True, "Pod is running"),
        ]

    @staticmethod
    def _succeeded_conditions(name: str) -> list[conditions.Condition]:
        return [
            conditions.condition("Bound", True, "Bound", f"PVC {name} Bound"),
            conditions.condition("Ready", True),
            conditions.condition("Running", False, "Completed"),
        ]

    @staticmethod
    def _failed_conditions() -> list[conditions.Condition]:
        return [
            conditions.condition("Bound", True, "Bound"),
            conditions.condition("Ready", False, "Error"),
            conditions.condition("Running", False, "Error", "the transfer failed"),
        ]


def _requested_size(spec: dict[str, Any]) -> str | None:
    wanted = spec.get("storage") or spec.get("pvc") or {}
    size = ((wanted.get("resources") or {}).get("requests") or {}).get("storage")
    return str(size) if size is not None else None


def _fraction_done(dv: kube.Obj, steps: int) -> float:
    """How far an interrupted transfer got, from its status (0 for a new one)."""
    status = dv.get("status") or {}
    if not str(status.get("phase", "")).endswith("InProgress"):
        return 0.0
    progress = str(status.get("progress", "N/A")).rstrip("%")
    try:
        done = float(progress) / 100.0
    except ValueError:
        done = 0.0
    return SCHEDULED_SHARE + (1 - SCHEDULED_SHARE) * min(done, 1.0)
