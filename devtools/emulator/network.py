"""Each VM's own address: a loopback alias (no root) or a network namespace on a bridge (root).

`loopback`: every VM gets a distinct 127.x.y.z; its guest binds the spec's ports on it. Kubernetes
rejects loopback addresses in EndpointSlices, so pods carry no podIP in this mode.

`netns`: every VM gets a network namespace with a veth pair into the bridge `wemu0` (10.213.0.1/16 by
default) and an address from that /16; its guest runs inside the namespace. Pods carry the address as
podIP, so a Service's EndpointSlices list the VMs. Namespaces are named `wemu-<emulator pid>-<index>`,
so a new emulator removes the ones of emulators that died without cleaning up.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import re
import socket
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from emulator.config import EmulatorConfig
from emulator.logs import fields

log = logging.getLogger("emulator.network")

NETNS_PREFIX = "wemu-"
VETH_PREFIX = "wev"


@dataclass(frozen=True)
class Attachment:
    ip: str
    index: int
    netns: str | None = None
    veth: str | None = None


def round_robin(first: int, last: int, previous: int | None) -> list[int]:
    """Every index of [first, last], starting after `previous` and wrapping around: the order in which
    CNI's host-local IPAM tries addresses (containernetworking/plugins, plugins/ipam/host-local/README.md:
    "loosely round-robin"; its allocator starts after the last reserved IP). An address freed a moment
    ago is then the last one handed out again, not the first: a load balancer that still routes to a
    deleted VM's address reaches nothing (and retries elsewhere) instead of a stranger's new VM."""
    span = list(range(first, last + 1))
    if previous is None or not first <= previous <= last:
        return span
    cut = previous - first + 1
    return span[cut:] + span[:cut]


class LastReserved:
    """The last index handed out, in a file shared by every emulator of this host (host-local keeps
    `last_reserved_ip.0` in its data directory), read and written under an exclusive lock."""

    def __init__(self, name: str, directory: Path | None = None) -> None:
        base = directory or Path(tempfile.gettempdir()) / "webapp-scaler-emulator"
        base.mkdir(parents=True, exist_ok=True)
        self.path = base / f"{name}.last_reserved"

    @contextlib.contextmanager
    def locked(self) -> Iterator[tuple[int | None, list[int]]]:
        """(the last index, a one-item list to put the new one in) while holding the lock."""
        with open(self.path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                text = handle.read().strip()
                previous = int(text) if text.isdigit() else None
                chosen: list[int] = []
                yield previous, chosen
                if chosen:
                    handle.seek(0)
                    handle.truncate()
                    handle.write(str(chosen[0]))
                    handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class Network(Protocol):
    mode: str

    def prepare(self) -> None: ...
    def attach(self, preferred: str | None = None) -> Attachment: ...
    def detach(self, attachment: Attachment) -> None: ...
    def wrap(self, argv: list[str], attachment: Attachment) -> list[str]: ...
    def pod_ip(self, attachment: Attachment) -> str | None: ...
    def announce(self, attachment: Attachment, namespace: str, vmi: str, labels: dict[str, str]) -> None: ...
    def host_ip(self) -> str: ...
    def shutdown(self) -> None: ...


def build(config: EmulatorConfig) -> Network:
    if config.network == "netns":
        return NetnsNetwork(config)
    if config.network == "served":
        return ServedNetwork(config)
    return LoopbackNetwork(config)


# While a VM lives, its emulator holds this port of the VM's loopback address: a bind is atomic, so two
# emulators on one host (two test workers) can never hand out the same address, even before either
# guest has bound its own ports.
CLAIM_PORT = 65100


class LoopbackNetwork:
    mode = "loopback"

    def __init__(self, config: EmulatorConfig) -> None:
        self.base = int(ipaddress.IPv4Address(config.loopback_base))
        self.ports = config.guest_ports
        self._used: set[int] = set()
        self._claims: dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._last = LastReserved(f"loopback-{config.loopback_base}")

    def prepare(self) -> None:
        pass

    def attach(self, preferred: str | None = None) -> Attachment:
        with self._lock, self._last.locked() as (previous, chosen):
            candidates = round_robin(1, 65534, previous)
            if preferred:  # a restarted emulator gives a running VMI its address back
                with contextlib.suppress(ValueError):
                    wanted = int(ipaddress.IPv4Address(preferred)) - self.base
                    if 0 < wanted < 65535:
                        candidates.insert(0, wanted)
            for index in candidates:
                if index in self._used or index % 256 in (0, 255):
                    continue
                ip = str(ipaddress.IPv4Address(self.base + index))
                if not all(_port_free(ip, port) for port in self.ports):  # some other process holds it
                    continue
                claim = _claim(ip)
                if claim is None:  # another emulator's VM has it
                    continue
                self._used.add(index)
                self._claims[index] = claim
                chosen.append(index)
                return Attachment(ip, index)
        raise RuntimeError("no free loopback address left")

    def detach(self, attachment: Attachment) -> None:
        with self._lock:
            self._used.discard(attachment.index)
            claim = self._claims.pop(attachment.index, None)
        if claim is not None:
            claim.close()

    def wrap(self, argv: list[str], attachment: Attachment) -> list[str]:
        return argv

    def pod_ip(self, attachment: Attachment) -> str | None:
        return None

    def announce(self, attachment: Attachment, namespace: str, vmi: str, labels: dict[str, str]) -> None:
        pass  # the guest itself listens on its address

    def host_ip(self) -> str:
        return "127.0.0.1"

    def shutdown(self) -> None:
        with self._lock:
            claims, self._claims = list(self._claims.values()), {}
        for claim in claims:
            claim.close()


class ServedNetwork:
    """Addresses of a subnet that another process serves (the scale benchmark's agent farm, in a network
    namespace of its own that answers on every address of the subnet): handed out round robin with the
    shared cursor, nothing bound or checked here (no guest runs), the pod given the VMI's address as a
    CNI would. Only with `light`: there are no guest processes to put on them. With `served_announce` (a
    URL), each address is announced there with its VMI before the VMI reports it, and released when its
    VM stops: whatever answers on the subnet knows which VM an address is before anyone can ask it."""

    mode = "served"

    def __init__(self, config: EmulatorConfig) -> None:
        if not config.light:
            raise ValueError("--network served needs --light: no guest process can run on a served address")
        self.subnet = ipaddress.IPv4Network(config.served_subnet)
        self._used: set[int] = set()
        self._lock = threading.Lock()
        self._last = LastReserved(f"served-{self.subnet.network_address}-{self.subnet.prefixlen}")
        self.announce_url = config.served_announce

    def prepare(self) -> None:
        pass

    def attach(self, preferred: str | None = None) -> Attachment:
        last = min(self.subnet.num_addresses - 2, 65534)
        with self._lock, self._last.locked() as (previous, chosen):
            candidates = round_robin(1, last, previous)
            if preferred:  # a restarted emulator gives a running VMI its address back
                with contextlib.suppress(ValueError):
                    wanted = int(ipaddress.IPv4Address(preferred)) - int(self.subnet.network_address)
                    if 0 < wanted <= last:
                        candidates.insert(0, wanted)
            for index in candidates:
                if index not in self._used:
                    self._used.add(index)
                    chosen.append(index)
                    return Attachment(str(self.subnet.network_address + index), index)
        raise RuntimeError(f"no free address left in {self.subnet}")

    def detach(self, attachment: Attachment) -> None:
        self._post({"ip": attachment.ip, "released": True})
        with self._lock:
            self._used.discard(attachment.index)

    def wrap(self, argv: list[str], attachment: Attachment) -> list[str]:
        return argv

    def pod_ip(self, attachment: Attachment) -> str | None:
        return attachment.ip

    def announce(self, attachment: Attachment, namespace: str, vmi: str, labels: dict[str, str]) -> None:
        self._post({"ip": attachment.ip, "namespace": namespace, "vmi": vmi, "labels": labels})

    def _post(self, body: dict[str, object]) -> None:
        if not self.announce_url:
            return
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(
            self.announce_url, data=json.dumps(body).encode(), method="POST", headers=headers
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def host_ip(self) -> str:
        return "127.0.0.1"

    def shutdown(self) -> None:
        pass


def _claim(ip: str) -> socket.socket | None:
    """A listening socket on (ip, CLAIM_PORT) without SO_REUSEADDR, or None when another holds it."""
    claim = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        claim.bind((ip, CLAIM_PORT))
        claim.listen(0)
    except OSError:
        claim.close()
        return None
    return claim


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


class NetnsNetwork:
    mode = "netns"

    def __init__(self, config: EmulatorConfig) -> None:
        self.subnet = ipaddress.IPv4Network(config.netns_subnet)
        self.bridge = config.bridge
        self.gateway = str(self.subnet.network_address + 1)
        self._used: set[int] = set()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._last = LastReserved(f"netns-{self.bridge}")

    def prepare(self) -> None:
        if os.geteuid() != 0:
            raise PermissionError("--network netns needs root (network namespaces and veth pairs)")
        self.remove_stale()
        self._ensure_bridge()
        log.info("bridge ready", extra=fields(bridge=self.bridge, gateway=self.gateway, subnet=str(self.subnet)))

    def _ensure_bridge(self) -> None:
        """The shared bridge with the gateway address, up. Idempotent and safe against other emulators
        doing the same at the same moment (an "exists" from `ip` is success), and called before every VM:
        an emulator that stopped while this one had no VM may have removed the bridge."""
        if not _ip("link", "show", self.bridge, check=False):
            _ip("link", "add", self.bridge, "type", "bridge", check=False)
        addresses = subprocess.run(
            ["ip", "-o", "-4", "addr", "show", "dev", self.bridge], capture_output=True, text=True, check=True
        ).stdout
        if f" {self.gateway}/" not in addresses:
            _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge, check=False)
        _ip("link", "set", self.bridge, "up")

    def remove_stale(self) -> None:
        """Namespaces of emulators that are gone (killed without cleanup): their guests and links."""
        for name in _netns_names():
            match = re.fullmatch(rf"{NETNS_PREFIX}(\d+)-(\d+)", name)
            if match is None:
                continue
            pid = int(match.group(1))
            if pid != self._pid and _alive(pid):
                continue
            _kill_netns_processes(name)
            _ip("netns", "del", name, check=False)
            _ip("link", "del", f"{VETH_PREFIX}{int(match.group(2)):04x}", check=False)
            log.info("removed stale network namespace", extra=fields(netns=name))

    def attach(self, preferred: str | None = None) -> Attachment:
        """A namespace and veth pair for one VM. Another emulator on this host may pick the same free
        index at the same moment: whoever creates the veth first has it, the other takes the next one."""
        error = ""
        for _attempt in range(8):
            attachment = self._reserve(preferred)
            preferred = None
            veth, peer = attachment.veth or "", _peer(attachment.index)
            created = subprocess.run(
                ["ip", "link", "add", veth, "type", "veth", "peer", "name", peer], capture_output=True, text=True
            )
            if created.returncode == 0:
                return self._attach(attachment)
            error = created.stderr.strip()  # taken by another emulator since we looked: it stays marked
        raise RuntimeError(f"no VM address: every veth pair tried was taken meanwhile (last: {error})")

    def _reserve(self, preferred: str | None) -> Attachment:
        with self._lock, self._last.locked() as (previous, chosen):
            self._ensure_bridge()
            taken = _link_names()
            candidates = round_robin(2, min(self.subnet.num_addresses - 2, 65534), previous)
            if preferred:
                with contextlib.suppress(ValueError):
                    wanted = int(ipaddress.IPv4Address(preferred)) - int(self.subnet.network_address)
                    if 1 < wanted < self.subnet.num_addresses - 1:
                        candidates.insert(0, wanted)
            for index in candidates:
                veth = f"{VETH_PREFIX}{index:04x}"
                if index in self._used or veth in taken:  # another emulator's VM may hold it
                    continue
                self._used.add(index)
                chosen.append(index)
                break
            else:
                raise RuntimeError("no free address left in the VM subnet")
        ip = str(self.subnet.network_address + index)
        return Attachment(ip, index, f"{NETNS_PREFIX}{self._pid}-{index}", veth)

    def _attach(self, attachment: Attachment) -> Attachment:
        """The rest of the plumbing, once the veth pair is ours."""
        ip, netns, veth, peer = attachment.ip, attachment.netns or "", attachment.veth or "", _peer(attachment.index)
        try:
            _ip("netns", "add", netns)
            _ip("link", "set", peer, "netns", netns)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", netns, "link", "set", peer, "name", "eth0")
            _ip("-n", netns, "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            _ip("-n", netns, "route", "add", "default", "via", self.gateway)
        except BaseException:
            self.detach(attachment)
            raise
        log.info("network namespace ready", extra=fields(netns=netns, ip=ip, veth=veth))
        return attachment

    def detach(self, attachment: Attachment) -> None:
        if attachment.netns:
            _kill_netns_processes(attachment.netns)
            _ip("netns", "del", attachment.netns, check=False)
        if attachment.veth:
            _ip("link", "del", attachment.veth, check=False)
        with self._lock:
            self._used.discard(attachment.index)

    def wrap(self, argv: list[str], attachment: Attachment) -> list[str]:
        assert attachment.netns is not None
        return ["ip", "netns", "exec", attachment.netns, *argv]

    def pod_ip(self, attachment: Attachment) -> str | None:
        return attachment.ip

    def announce(self, attachment: Attachment, namespace: str, vmi: str, labels: dict[str, str]) -> None:
        pass  # the guest itself listens on its address

    def host_ip(self) -> str:
        return self.gateway

    def shutdown(self) -> None:
        """Remove our namespaces; drop the bridge once no other emulator runs on this host (none of its
        namespaces left, no VM attached): a running emulator between VMs still needs it, and would
        otherwise have to re-create it (`_ensure_bridge` does, but its host routes flap meanwhile)."""
        for name in _netns_names():
            if name.startswith(f"{NETNS_PREFIX}{self._pid}-"):
                _kill_netns_processes(name)
                _ip("netns", "del", name, check=False)
        others = [
            name
            for name in _netns_names()
            if (match := re.fullmatch(rf"{NETNS_PREFIX}(\d+)-(\d+)", name)) and _alive(int(match.group(1)))
        ]
        ports = subprocess.run(
            ["ip", "-o", "link", "show", "master", self.bridge], capture_output=True, text=True, check=False
        ).stdout.strip()
        if not ports and not others:
            _ip("link", "del", self.bridge, check=False)


def _peer(index: int) -> str:
    return f"wep{index:04x}"


def _ip(*args: str, check: bool = True) -> bool:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.returncode == 0


def _netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _link_names() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _kill_netns_processes(netns: str) -> None:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout
    for pid in out.split():
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.kill(int(pid), 9)


def _alive(pid: int) -> bool:
    """The pid runs an emulator (a recycled pid of another program does not keep namespaces alive)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"emulator" in cmdline
