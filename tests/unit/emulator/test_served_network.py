"""`--network served`: addresses of a subnet another process answers on, round robin, the pod's too."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from emulator.config import EmulatorConfig
from emulator.network import ServedNetwork


def test_served_addresses_come_round_robin_from_the_subnet_and_the_pod_gets_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a cursor of this test's own
    network = ServedNetwork(EmulatorConfig(light=True, network="served", served_subnet="10.216.0.0/30"))
    first, second = network.attach(), network.attach()
    assert (first.ip, second.ip) == ("10.216.0.1", "10.216.0.2")
    assert network.pod_ip(first) == first.ip
    with pytest.raises(RuntimeError, match=r"no free address left in 10\.216\.0\.0/30"):
        network.attach()
    network.detach(first)
    assert network.attach().ip == "10.216.0.1"


def test_served_addresses_need_the_light_mode() -> None:
    with pytest.raises(ValueError, match="needs --light"):
        ServedNetwork(EmulatorConfig(network="served"))
