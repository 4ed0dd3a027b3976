"""The KubeVirt/CDI emulator against the real control plane: DataVolumes clone, VMs boot as real local
processes that answer HTTP, halting and deleting stop them, and nothing outlives the emulator.

Every emulator here watches only its test's namespace, so they never act on each other's objects.
Waits are bounded polls on the API (the machine is shared and noisy); no assertion is about time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from emulator.background import RunningEmulator, run_in_background
from tests.integration.conftest import Kubectl
from webapp_scaler_dev.devcluster import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds_installed")]

T = TypeVar("T")
DRAIN_TOKEN = "emulator-test-drain-token"
FAST = {"clone_seconds": 1.5, "import_seconds": 0.8, "boot_seconds": 0.3, "stop_grace": 3, "probe_period": 0.3}
KV = ("kubevirt.io", "v1")
CDI = ("cdi.kubevirt.io", "v1beta1")


# ---- helpers -----------------------------------------------------------------------------------------
def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 45.0, interval: float = 0.2) -> T:
    """Poll until `probe` returns something truthy; fail with `what` after the (generous) timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_for_object(
    get: Callable[[], dict[str, Any] | None], ok: Callable[[dict[str, Any]], Any], what: str
) -> dict[str, Any]:
    """Poll `get` until the object exists and `ok(object)` holds; returns that object."""

    def probe() -> dict[str, Any] | None:
        obj = get()
        return obj if obj is not None and ok(obj) else None

    return wait_for(probe, what)


class Api:
    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        # the client's annotations do not cover `_preload_content=False` or dict bodies
        self.core: Any = client.CoreV1Api(self.client)
        self.custom: Any = client.CustomObjectsApi(self.client)
        self.namespace = namespace

    def get(self, group_version: tuple[str, str], plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(*group_version, self.namespace, plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return obj

    def create(self, group_version: tuple[str, str], plural: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(*group_version, self.namespace, plural, body)

    def patch(self, group_version: tuple[str, str], plural: str, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            *group_version, self.namespace, plural, name, patch, _content_type="application/merge-patch+json"
        )

    def pods(self, selector: str) -> list[dict[str, Any]]:
        response = self.core.list_namespaced_pod(self.namespace, label_selector=selector, _preload_content=False)
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return items

    def core_get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            response = getattr(self.core, f"read_namespaced_{kind}")(name, self.namespace, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        obj: dict[str, Any] = json.loads(response.data)
        return obj

    def events(self, name: str) -> list[str]:
        response = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}", _preload_content=False
        )
        return [e["reason"] for e in json.loads(response.data)["items"]]


@pytest.fixture
def api(cluster: DevCluster, namespace: str) -> Iterator[Api]:
    handle = Api(cluster.kubeconfig, namespace)
    yield handle
    handle.client.close()


class DataVolumeRecorder:
    """Every (phase, progress) the DataVolumes of a namespace went through, from a watch: a watch sees
    each status write, so the record does not depend on polling fast enough."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen: dict[str, list[tuple[str, str]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> DataVolumeRecorder:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        listed = self.api.custom.list_namespaced_custom_object(*CDI, self.api.namespace, "datavolumes")
        version = listed["metadata"]["resourceVersion"]
        self._ready.set()
        while not self._stop.is_set():  # short watches, so a stop is noticed within a second
            for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                self.api.custom.list_namespaced_custom_object,
                *CDI,
                self.api.namespace,
                "datavolumes",
                resource_version=version,
                timeout_seconds=1,
            ):
                obj = event["object"]
                version = obj["metadata"]["resourceVersion"]
                state = obj.get("status") or {}
                entry = (state.get("phase", ""), state.get("progress", ""))
                history = self.seen.setdefault(obj["metadata"]["name"], [])
                if not history or history[-1] != entry:
                    history.append(entry)


def golden_datavolume(name: str = "golden") -> dict[str, Any]:
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": {"name": name},
        "spec": {
            "source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:41"}},
            "storage": {"resources": {"requests": {"storage": "5Gi"}}},
        },
    }


def virtual_machine(
    name: str, namespace: str, *, source: dict[str, Any], labels: dict[str, str], run_strategy: str = "Always"
) -> dict[str, Any]:
    dv_name = f"{name}-rootdisk"
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name},
        "spec": {
            "runStrategy": run_strategy,
            "dataVolumeTemplates": [{"metadata": {"name": dv_name}, "spec": {**source, "storage": {}}}],
            "template": {
                "metadata": {"labels": labels, "annotations": {"example.com/owner": "tests"}},
                "spec": {
                    "domain": {
                        "devices": {"disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}}]},
                        "resources": {"requests": {"memory": "1Gi"}},
                    },
                    "volumes": [{"name": "rootdisk", "dataVolume": {"name": dv_name}}],
                    "readinessProbe": {
                        "httpGet": {"port": 9100, "path": "/readyz"},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                },
            },
        },
    }


def clone_of(namespace: str, name: str) -> dict[str, Any]:
    return {"source": {"pvc": {"namespace": namespace, "name": name}}}


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


def phase(obj: dict[str, Any] | None) -> str:
    return str(status(obj).get("phase", ""))


def http_get(ip: str, port: int, path: str = "/", method: str = "GET", token: str | None = None) -> int:
    connection = http.client.HTTPConnection(ip, port, timeout=5)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def guest_pids(emulator: RunningEmulator, vm: str) -> list[int]:
    pids: list[int] = []
    for entry in emulator.log_entries():
        if entry.get("msg") == "guest started" and entry.get("vm") == vm:
            pids = [int(p) for p in entry["pids"]]
    return pids


@contextlib.contextmanager
def emulator_for(cluster: DevCluster, namespace: str, tmp_path: Path, **options: Any) -> Iterator[RunningEmulator]:
    with run_in_background(
        cluster.kubeconfig,
        namespace=namespace,
        workdir=tmp_path / "emulator",
        env={"SESSION_AGENT_DRAIN_TOKEN": DRAIN_TOKEN},
        **{**FAST, **options},
    ) as running_emulator:
        try:
            yield running_emulator
        except BaseException:
            print(running_emulator.tail(80))
            raise


# ---- tests -------------------------------------------------------------------------------------------
def test_vm_clones_boots_serves_halts_and_is_collected(
    cluster: DevCluster, api: Api, namespace: str, tmp_path: Path
) -> None:
    labels = {"app.kubernetes.io/name": "shop", "tier": "web"}
    with emulator_for(cluster, namespace, tmp_path) as emulator, DataVolumeRecorder(api) as recorded:
        # a golden image import
        api.create(CDI, "datavolumes", golden_datavolume())
        golden = wait_for_object(
            lambda: api.get(CDI, "datavolumes", "golden"),
            lambda dv: phase(dv) == "Succeeded",
            "the golden DataVolume to import",
        )
        assert golden["status"]["progress"] == "100.0%"
        assert condition(golden, "Ready")["status"] == "True"
        pvc = api.core_get("persistent_volume_claim", "golden")
        assert pvc is not None and pvc["status"]["phase"] == "Bound"
        assert pvc["metadata"]["ownerReferences"][0]["uid"] == golden["metadata"]["uid"]

        # a VM cloning it
        api.create(
            KV,
            "virtualmachines",
            virtual_machine("web-1", namespace, source=clone_of(namespace, "golden"), labels=labels),
        )
        vm = wait_for_object(
            lambda: api.get(KV, "virtualmachines", "web-1"),
            lambda v: status(v).get("ready"),
            "the VM to run and be ready",
        )
        assert vm["status"]["printableStatus"] == "Running"
        assert vm["status"]["created"] is True
        assert condition(vm, "Ready")["status"] == "True"

        dv = api.get(CDI, "datavolumes", "web-1-rootdisk")
        assert dv is not None and phase(dv) == "Succeeded" and dv["status"]["progress"] == "100.0%"
        owner = dv["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("VirtualMachine", vm["metadata"]["uid"], True)

        vmi = api.get(KV, "virtualmachineinstances", "web-1")
        assert vmi is not None and phase(vmi) == "Running"
        assert vmi["metadata"]["ownerReferences"][0]["uid"] == vm["metadata"]["uid"]
        assert vmi["metadata"]["labels"].items() >= labels.items()
        assert vmi["metadata"]["annotations"]["example.com/owner"] == "tests"
        ip = vmi["status"]["interfaces"][0]["ipAddress"]
        assert vmi["status"]["interfaces"][0]["ipAddresses"] == [ip]
        assert vmi["status"]["nodeName"] == "emulated-node"
        assert condition(vmi, "Ready")["status"] == "True"

        (pod,) = api.pods("kubevirt.io=virt-launcher,vm.kubevirt.io/name=web-1")
        assert pod["metadata"]["name"].startswith("virt-launcher-web-1-")
        assert pod["metadata"]["labels"].items() >= labels.items()
        assert pod["metadata"]["ownerReferences"][0]["uid"] == vmi["metadata"]["uid"]
        assert pod["spec"]["nodeName"] == "emulated-node"
        assert pod["status"]["phase"] == "Running"
        assert "podIP" not in pod["status"]  # loopback addresses are not valid pod IPs
        assert condition(pod, "Ready")["status"] == "True"

        # real HTTP to the guest: the web shop behind the session agent, on the VM's own address
        assert http_get(ip, 8080, "/") == 200
        assert http_get(ip, 9100, "/metrics") == 200

        # a drained agent fails /readyz: the VMI and its pod turn not Ready; cancelling brings them back
        assert http_get(ip, 9100, "/drain", method="POST", token=DRAIN_TOKEN) in (200, 202)
        wait_for(
            lambda: condition(api.get(KV, "virtualmachineinstances", "web-1"), "Ready").get("status") == "False",
            "the drained VMI to turn not Ready",
        )
        wait_for(
            lambda: condition(api.core_get("pod", pod["metadata"]["name"]), "Ready").get("status") == "False",
            "the drained VMI's pod to turn not Ready",
        )
        assert http_get(ip, 9100, "/drain", method="DELETE", token=DRAIN_TOKEN) == 200
        wait_for(
            lambda: condition(api.get(KV, "virtualmachineinstances", "web-1"), "Ready").get("status") == "True",
            "the VMI to be Ready again",
        )

        history = recorded.seen["web-1-rootdisk"]
        phases = [p for p, _ in history]
        assert phases.index("CloneScheduled") < phases.index("CloneInProgress") < phases.index("Succeeded")
        progress = [p for ph, p in history if ph == "CloneInProgress"]
        assert progress[0] == "N/A" and "12.5%" in progress, history
        assert [p for p, _ in recorded.seen["golden"]][-1] == "Succeeded"
        assert "ImportInProgress" in [p for p, _ in recorded.seen["golden"]]
        vm_events = api.events("web-1")
        assert {"SuccessfulDataVolumeCreate", "SuccessfulCreate", "Started"} <= set(vm_events), vm_events

        # halting stops the guest and removes the VMI and its pod
        guests = guest_pids(emulator, "web-1")
        assert guests and all(running(pid) for pid in guests)
        api.patch(KV, "virtualmachines", "web-1", {"spec": {"runStrategy": "Halted"}})
        wait_for(lambda: api.get(KV, "virtualmachineinstances", "web-1") is None, "the VMI to go")
        wait_for(lambda: not any(running(pid) for pid in guests), "the halted guest's processes to end")
        wait_for(lambda: not api.pods("vm.kubevirt.io/name=web-1"), "the virt-launcher pod to go")
        wait_for(
            lambda: status(api.get(KV, "virtualmachines", "web-1")).get("printableStatus") == "Stopped",
            "the VM to report Stopped",
        )

        # started again, then deleted: the garbage collector removes VMI, DataVolume, PVC and pod
        api.patch(KV, "virtualmachines", "web-1", {"spec": {"runStrategy": "Always"}})
        wait_for(
            lambda: (v := api.get(KV, "virtualmachines", "web-1")) and status(v).get("ready"),
            "the restarted VM to be ready",
        )
        guests = guest_pids(emulator, "web-1")
        assert guests and all(running(pid) for pid in guests)
        api.custom.delete_namespaced_custom_object(*KV, namespace, "virtualmachines", "web-1")
        wait_for(lambda: api.get(KV, "virtualmachineinstances", "web-1") is None, "the VMI to be collected")
        wait_for(lambda: api.get(CDI, "datavolumes", "web-1-rootdisk") is None, "the DataVolume to be collected")
        wait_for(lambda: not api.pods("vm.kubevirt.io/name=web-1"), "the pod to be collected")
        wait_for(lambda: api.core_get("persistent_volume_claim", "web-1-rootdisk") is None, "the PVC to go")
        wait_for(lambda: not any(running(pid) for pid in guests), "the deleted VM's guest to end")
        assert api.get(CDI, "datavolumes", "golden") is not None  # not owned by the VM


def test_clone_waits_for_a_missing_source_and_the_vm_does_not_start(
    cluster: DevCluster, api: Api, namespace: str, tmp_path: Path
) -> None:
    with emulator_for(cluster, namespace, tmp_path):
        api.create(
            KV,
            "virtualmachines",
            virtual_machine("web-2", namespace, source=clone_of(namespace, "nowhere"), labels={"app": "shop"}),
        )
        dv = wait_for_object(
            lambda: api.get(CDI, "datavolumes", "web-2-rootdisk"),
            lambda d: condition(d, "Bound").get("reason") == "CloneWithoutSource",
            "the clone to report its missing source",
        )
        assert phase(dv) == "CloneScheduled"
        assert condition(dv, "Bound")["message"] == "The source pvc nowhere doesn't exist"
        assert condition(dv, "Ready")["status"] == "False"
        wait_for(lambda: "CloneWithoutSource" in api.events("web-2-rootdisk"), "the CloneWithoutSource event")
        vm = wait_for_object(lambda: api.get(KV, "virtualmachines", "web-2"), status, "the VM's status")
        assert vm["status"]["printableStatus"] == "Provisioning"
        assert vm["status"]["ready"] is False
        assert api.get(KV, "virtualmachineinstances", "web-2") is None  # no VMI while a DataVolume is not ready
        assert api.core_get("persistent_volume_claim", "web-2-rootdisk") is None  # CDI creates it with the source

        # a DataSource that does not exist leaves its clone Pending
        body = golden_datavolume("web-3-rootdisk")
        body["spec"] = {"sourceRef": {"kind": "DataSource", "name": "fedora"}, "storage": {}}
        api.create(CDI, "datavolumes", body)
        pending = wait_for_object(
            lambda: api.get(CDI, "datavolumes", "web-3-rootdisk"), phase, "the DataSource clone's phase"
        )
        assert phase(pending) == "Pending"
        assert condition(pending, "Bound")["reason"] == "CloneWithoutSource"

        # once the sources exist and are populated, the clones complete and the VM starts
        api.create(CDI, "datavolumes", golden_datavolume("nowhere"))
        api.create(
            CDI,
            "datasources",
            {
                "apiVersion": "cdi.kubevirt.io/v1beta1",
                "kind": "DataSource",
                "metadata": {"name": "fedora"},
                "spec": {"source": {"pvc": {"name": "nowhere", "namespace": namespace}}},
            },
        )
        wait_for(
            lambda: (v := api.get(KV, "virtualmachines", "web-2")) and status(v).get("ready"),
            "the VM to start once its source exists",
        )
        wait_for(
            lambda: phase(api.get(CDI, "datavolumes", "web-3-rootdisk")) == "Succeeded",
            "the DataSource clone to complete",
        )
        assert condition(api.get(CDI, "datasources", "fedora"), "Ready")["status"] == "True"


def test_fail_annotation_fails_the_datavolume_and_the_vm_reports_it(
    cluster: DevCluster, api: Api, namespace: str, tmp_path: Path
) -> None:
    with emulator_for(cluster, namespace, tmp_path):
        api.create(CDI, "datavolumes", golden_datavolume())
        vm = virtual_machine("web-4", namespace, source=clone_of(namespace, "golden"), labels={"app": "shop"})
        vm["spec"]["dataVolumeTemplates"][0]["metadata"]["annotations"] = {"emulator.webappscaler.io/fail": "true"}
        api.create(KV, "virtualmachines", vm)
        wait_for(lambda: phase(api.get(CDI, "datavolumes", "web-4-rootdisk")) == "Failed", "the DataVolume to fail")
        wait_for(
            lambda: status(api.get(KV, "virtualmachines", "web-4")).get("printableStatus") == "DataVolumeError",
            "the VM to report DataVolumeError",
        )
        assert api.get(KV, "virtualmachineinstances", "web-4") is None


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_no_guest_outlives_the_emulator(
    cluster: DevCluster, api: Api, namespace: str, tmp_path: Path, how: signal.Signals
) -> None:
    with emulator_for(cluster, namespace, tmp_path) as emulator:
        api.create(CDI, "datavolumes", golden_datavolume())
        api.create(
            KV,
            "virtualmachines",
            virtual_machine("a", namespace, source=clone_of(namespace, "golden"), labels={"app": "shop"}),
        )
        wait_for(lambda: status(api.get(KV, "virtualmachines", "a")).get("ready"), "the VM to be ready")
        guests = guest_pids(emulator, "a")
        assert len(guests) == 2 and all(running(pid) for pid in guests)  # the web shop and the agent
        emulator.process.send_signal(how)
        emulator.process.wait(30)
    wait_for(lambda: not any(running(pid) for pid in guests), "every guest process to end with the emulator")


@pytest.mark.skipif(os.geteuid() != 0, reason="netns mode needs root (network namespaces, veth pairs); CI runs as root")
def test_netns_service_endpoints_are_the_vms(
    cluster: DevCluster, api: Api, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    labels = {"app": f"shop-{uuid.uuid4().hex[:6]}"}
    with emulator_for(cluster, namespace, tmp_path, network="netns") as emulator:
        api.create(CDI, "datavolumes", golden_datavolume())
        for name in ("n1", "n2"):
            api.create(
                KV,
                "virtualmachines",
                virtual_machine(name, namespace, source=clone_of(namespace, "golden"), labels=labels),
            )
        api.core.create_namespaced_service(
            namespace,
            {"metadata": {"name": "shop"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
        )

        def ready_endpoints() -> set[str]:
            out = kubectl(
                "get", "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=shop", "-o", "json"
            ).stdout
            return {
                address
                for item in json.loads(out)["items"]
                for endpoint in item.get("endpoints") or []
                if (endpoint.get("conditions") or {}).get("ready")
                for address in endpoint["addresses"]
            }

        ips = {}
        for name in ("n1", "n2"):
            vmi = wait_for_object(
                lambda n=name: api.get(KV, "virtualmachineinstances", n),  # type: ignore[misc]
                lambda v: condition(v, "Ready").get("status") == "True",
                f"VMI {name} to be Ready",
            )
            ips[name] = vmi["status"]["interfaces"][0]["ipAddress"]
        pods = {p["metadata"]["labels"]["vm.kubevirt.io/name"]: p for p in api.pods("kubevirt.io=virt-launcher")}
        assert {name: pods[name]["status"]["podIP"] for name in ips} == ips
        wait_for(lambda: ready_endpoints() == set(ips.values()), "the EndpointSlice to list both VMs")
        for ip in ips.values():
            assert http_get(ip, 8080, "/") == 200
        assert ips["n1"] != ips["n2"]

        # draining n1 takes it out of the Service
        assert http_get(ips["n1"], 9100, "/drain", method="POST", token=DRAIN_TOKEN) in (200, 202)
        wait_for(lambda: ready_endpoints() == {ips["n2"]}, "the drained VM to leave the EndpointSlice")

        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        own = f"wemu-{emulator.process.pid}-"
        assert netns.count(own) == 2
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert own not in netns  # the emulator removed its namespaces on the way out
