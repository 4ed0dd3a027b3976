"""Addresses of emulated VMs: two emulators on one host (two test workers) never hand out the same one,
even before either VM's guest has bound a port (the first holds the address's claim port while its VM
lives), and a freed address is handed out again last, not first, as CNI's host-local IPAM does."""

from __future__ import annotations

from pathlib import Path

from emulator.config import EmulatorConfig
from emulator.network import LastReserved, LoopbackNetwork, round_robin


def test_two_emulators_never_share_an_address_and_a_freed_one_is_not_handed_out_next() -> None:
    config = EmulatorConfig(loopback_base="127.91.0.0")
    first, second = LoopbackNetwork(config), LoopbackNetwork(config)
    a = first.attach()
    b = second.attach()
    assert a.ip != b.ip
    first.detach(a)
    c = second.attach()
    assert c.ip not in (a.ip, b.ip)  # a's address waits its turn: whoever still routes there finds nobody
    second.shutdown()
    first.shutdown()


def test_round_robin_starts_after_the_last_reserved_index_and_wraps() -> None:
    assert round_robin(2, 6, None) == [2, 3, 4, 5, 6]
    assert round_robin(2, 6, 4) == [5, 6, 2, 3, 4]
    assert round_robin(2, 6, 6) == [2, 3, 4, 5, 6]
    assert round_robin(2, 6, 99) == [2, 3, 4, 5, 6]  # a cursor from a wider range: start over


def test_the_last_reserved_index_is_shared_through_its_file(tmp_path: Path) -> None:
    one, other = LastReserved("netns-test", tmp_path), LastReserved("netns-test", tmp_path)
    with one.locked() as (previous, chosen):
        assert previous is None
        chosen.append(7)
    with other.locked() as (previous, chosen):
        assert previous == 7  # a second emulator continues where the first stopped
    with other.locked() as (previous, _chosen):
        assert previous == 7  # nothing chosen: the cursor stays
