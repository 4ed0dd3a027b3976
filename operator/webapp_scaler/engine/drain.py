"""Which VMs leave on scale-in, which come back on scale-up, and when a draining VM may go.

Scale-in is session-aware: the VM with the fewest sessions goes first (its users are fewest to wait
for), it stops receiving new sessions, and it is deleted only when its sessions reach zero or its drain
timeout expires. A protected VM is never chosen.

A VM that has served (was seen Ready) and lost its readiness — a slow probe on a busy host, a stalled
guest — may still hold sessions: it is drained like a Ready VM, after all of them, and never deleted as a
not-yet-ready surplus. Only VMs that never served are deleted without a drain.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from webapp_scaler import model, webappscaling
from webapp_scaler.engine import observe

UNREADY = (model.VMPhase.CLONING, model.VMPhase.BOOTING, model.VMPhase.STARTING)


def _sessions_or_inf(vm: model.VMState) -> float:
    """An unscrapable VM sorts last: it may hold many users, we cannot tell."""
    value = observe.valid_sessions(vm.sessions)
    return math.inf if value is None else value


def _lost_readiness(vm: model.VMState, served: Collection[str]) -> bool:
    return vm.phase in UNREADY and vm.name in served


def choose_drain_victims(
    vms: Sequence[model.VMState],
    count: int,
    order: webappscaling.ScaleInOrder = "FewestSessions",
    served: Collection[str] = (),
) -> tuple[str, ...]:
    """Up to `count` unprotected VMs to drain, in the order the spec asks for (ties: newest): the Ready
    ones, then those in `served` (seen Ready before) that lost their readiness."""
    if count <= 0:
        return ()
    candidates = [
        vm for vm in vms if (vm.phase is model.VMPhase.READY or _lost_readiness(vm, served)) and not vm.protected
    ]
    if order == "Oldest":
        candidates.sort(key=lambda vm: (_lost_readiness(vm, served), vm.created_at, vm.name))
    elif order == "Newest":
        candidates.sort(key=lambda vm: (_lost_readiness(vm, served), -vm.created_at, vm.name))
    else:
        candidates.sort(key=lambda vm: (_lost_readiness(vm, served), _sessions_or_inf(vm), -vm.created_at, vm.name))
    return tuple(vm.name for vm in candidates[:count])


def choose_unready_surplus(vms: Sequence[model.VMState], count: int, served: Collection[str] = ()) -> tuple[str, ...]:
    """Up to `count` not-yet-ready VMs to delete, newest first: they hold no session and cost the most
    time to finish. VMs in `served` (seen Ready before) are never among them: they may hold sessions."""
    if count <= 0:
        return ()
    candidates = [vm for vm in vms if vm.phase in UNREADY and vm.name not in served and not vm.protected]
    candidates.sort(key=lambda vm: (-vm.created_at, vm.name))
    return tuple(vm.name for vm in candidates[:count])


def choose_return_to_service(
    vms: Sequence[model.VMState], count: int, *, now: float, timeout_seconds: int
) -> tuple[str, ...]:
    """Up to `count` draining VMs to put back in service, most sessions first: those would take longest
    to empty, and all of them are ready now while a new clone is minutes away."""
    if count <= 0:
        return ()
    candidates = [
        vm
        for vm in vms
        if vm.phase is model.VMPhase.DRAINING and not _drain_expired(vm, now=now, timeout_seconds=timeout_seconds)
    ]
    candidates.sort(key=lambda vm: (-(observe.valid_sessions(vm.sessions) or 0.0), vm.name))
    return tuple(vm.name for vm in candidates[:count])


def _drain_expired(vm: model.VMState, *, now: float, timeout_seconds: int) -> bool:
    since = vm.draining_since if vm.draining_since is not None else now
    return now - since >= timeout_seconds


def drained(vms: Sequence[model.VMState], *, now: float, timeout_seconds: int) -> tuple[str, ...]:
    """Draining VMs that may be deleted: their agent reports zero sessions, or the timeout expired.

    An unscrapable draining VM is kept until its timeout: "no answer" is not "no users".
    """
    return tuple(
        vm.name
        for vm in vms
        if vm.phase is model.VMPhase.DRAINING
        and (vm.sessions == 0 or _drain_expired(vm, now=now, timeout_seconds=timeout_seconds))
    )
