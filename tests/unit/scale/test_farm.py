"""The agent farm answers as a session agent does, each VM by the address it was asked on (here three
loopback addresses; in the benchmark the whole VM subnet inside the farm's network namespace)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import aiohttp

from webapp_scaler_dev.processes import free_port
from webapp_scaler_dev.scale.farm import Farm, FarmState, listener
from webapp_scaler_dev.scale.plan import LoadPlan

ADDRESSES = ["127.81.0.1", "127.81.0.2", "127.81.0.3"]


def vm(name: str, scaling: str, ip: str) -> dict[str, Any]:
    """What the emulator announces for a VM (`--served-announce`)."""
    return {"ip": ip, "namespace": "ns", "vmi": name, "labels": {"webappscaler.io/scaling": scaling}}


async def test_the_farm_answers_each_vm_its_share_and_a_draining_vm_none(tmp_path: Path) -> None:
    plan = LoadPlan(objects=1, base=25, high=30, period_s=100, hold_s=10)
    rounds = io.StringIO()
    farm = Farm(FarmState(plan, {("ns", "app"): 0}), rounds)
    port, ips = free_port(), ADDRESSES
    for ip in ips:
        await farm.serve(listener(port, address=ip))
    for i, ip in enumerate(ips[:2]):
        farm.announced(vm(f"app-{i}", "app", ip))
    try:
        async with aiohttp.ClientSession() as http:

            async def sessions(ip: str) -> int:
                async with http.get(f"http://{ip}:{port}/metrics") as answer:
                    text = await answer.text()
                return int(text.strip().rsplit(" ", 1)[1])

            assert [await sessions(ip) for ip in ips] == [13, 12, 0]
            async with http.post(f"http://{ips[0]}:{port}/drain", json={"mode": "RefuseNewSessions"}) as answer:
                assert await answer.json() == {"draining": True, "mode": "RefuseNewSessions"}
            async with http.get(f"http://{ips[0]}:{port}/readyz") as answer:
                assert answer.status == 503
            assert [await sessions(ip) for ip in ips[:2]] == [0, 25]
            farm.announced({"ip": ips[1], "released": True})
            assert await sessions(ips[1]) == 0
            assert farm.state.unmapped_scrapes == 2  # ips[2] (never announced) and ips[1] once released
    finally:
        farm.close()
    farm.flush()
    written = [json.loads(line) for line in rounds.getvalue().splitlines()]
    assert written and all(r["namespace"] == "ns" and r["name"] == "app" for r in written)
    assert sum(r["scrapes"] for r in written) == 4  # the scrapes of addresses a running VMI held
