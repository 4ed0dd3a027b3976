"""Which address of a VM the operator may talk to: never one a user could have forged or pointed elsewhere.

A VMI has no status subresource, so whoever may update a VMI may write its `status.interfaces[].ipAddress`
— and make the operator send its scrape and its drain request (with the bearer token) to any address:
its own loopback, a metadata endpoint, another tenant. The address is therefore taken from the VMI only
when it is the address the cluster gave the VMI's virt-launcher Pod (`status.podIP(s)`, written through
the Pod's status subresource, which users do not get) and it is not a loopback, link-local, unspecified
or multicast address, nor one of the operator's own. Pure: the records come from the watch indexes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    ip: str | None  # the address to use, or None
    problem: str | None  # why there is none (None while the VMI has no address yet)


def refused(ip: str, own: Collection[str]) -> str | None:
    """Why the operator must not send requests to `ip`, or None when it may."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"{ip!r} is not an IP address"
    if address.is_loopback:
        return f"{ip} is a loopback address"
    if address.is_link_local:
        return f"{ip} is a link-local address"
    if address.is_unspecified or address.is_multicast:
        return f"{ip} is not a unicast address"
    if ip in own or str(address) in own:
        return f"{ip} is the operator's own address"
    return None


def verify(vmi_ip: str | None, pod_ips: Sequence[tuple[str, ...]], own: Collection[str]) -> Verdict:
    """`vmi_ip` as the VMI reports it; `pod_ips` the addresses of each virt-launcher Pod the VMI controls."""
    if vmi_ip is None:
        return Verdict(None, None)
    if not pod_ips:
        return Verdict(None, f"VMI address {vmi_ip}: no virt-launcher pod of this VMI to confirm it")
    if len(pod_ips) > 1:
        return Verdict(None, f"VMI address {vmi_ip}: {len(pod_ips)} virt-launcher pods claim this VMI")
    if vmi_ip not in pod_ips[0]:
        shown = ", ".join(pod_ips[0]) or "none yet"
        return Verdict(None, f"VMI address {vmi_ip} is not its virt-launcher pod's address ({shown})")
    problem = refused(vmi_ip, own)
    return Verdict(None, f"VMI address {problem}") if problem else Verdict(vmi_ip, None)
