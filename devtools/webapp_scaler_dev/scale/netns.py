"""The farm's network namespace: the VM subnet is local there (every address of it answers), and the
host reaches it through one veth pair. Only this run's namespace and links are made and removed; no
traffic leaves the machine (the subnet is routed to the namespace, nowhere else)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
from collections.abc import Iterator

VM_SUBNET = "10.216.0.0/16"
LINK_SUBNET = "10.217.0.0/30"


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@contextlib.contextmanager
def farm_namespace(vm_subnet: str = VM_SUBNET, link_subnet: str = LINK_SUBNET) -> Iterator[str]:
    """Create the namespace (root only); yield its name; remove it, its veth pair and the host route."""
    if os.geteuid() != 0:
        raise PermissionError("the scale benchmark needs root: the agent farm answers in a network namespace")
    name = f"wsfarm-{os.getpid()}"
    host_if, farm_if = f"wsf{os.getpid() % 100000}h", f"wsf{os.getpid() % 100000}f"
    link = ipaddress.IPv4Network(link_subnet)
    host_ip, farm_ip = str(link.network_address + 1), str(link.network_address + 2)
    _remove_stale(vm_subnet)
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", farm_if)
        _ip("link", "set", farm_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/{link.prefixlen}", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{farm_ip}/{link.prefixlen}", "dev", farm_if)
        _ip("-n", name, "link", "set", farm_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "route", "add", "local", vm_subnet, "dev", "lo")  # every VM address is the farm's
        _ip("-n", name, "route", "add", "default", "via", host_ip)
        _ip("route", "add", vm_subnet, "via", farm_ip, "dev", host_if)
        yield name
    finally:
        _ip("route", "del", vm_subnet, "via", farm_ip, check=False)
        _ip("link", "del", host_if, check=False)
        _ip("netns", "del", name, check=False)


def _remove_stale(vm_subnet: str) -> None:
    """What a run killed without its cleanup left: its namespace (named after its pid), its veth, and the
    host's route to the VM subnet through it."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for name in listed:
        if name.startswith("wsfarm-") and name[7:].isdigit() and not os.path.exists(f"/proc/{name[7:]}"):
            pid = int(name[7:])
            _ip("link", "del", f"wsf{pid % 100000}h", check=False)
            _ip("netns", "del", name, check=False)
            _ip("route", "del", vm_subnet, check=False)
