"""Two emulators on one host (two test workers) never hand out the same loopback address, even before
either VM's guest has bound a port: the first holds the address's claim port while its VM lives."""

from __future__ import annotations

from emulator.config import EmulatorConfig
from emulator.network import LoopbackNetwork


def test_two_emulators_never_share_an_address_and_a_detached_one_is_free_again() -> None:
    config = EmulatorConfig(loopback_base="127.91.0.0")
    first, second = LoopbackNetwork(config), LoopbackNetwork(config)
    a = first.attach()
    b = second.attach()
    assert a.ip != b.ip
    first.detach(a)
    c = second.attach()
    assert c.ip == a.ip  # released with its VM
    second.shutdown()
    first.shutdown()
