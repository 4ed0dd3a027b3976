"""Faults against the whole product on one machine (the demo stack: real control plane, emulated
KubeVirt with the shop and the session agent in every VM, HAProxy, shoppers): the operator SIGKILLed at
seeded moments of its work, and kube-apiserver with etcd stopped for 30 s under it.

The bounded forms of `webapp-scaler-dev chaos crash|outage`; docs/reliability.md has the full form's
figures. Each run fails on any invariant broken at any moment (invariants.py), not only on its end state.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webapp_scaler_dev.chaos.bed import CHAOS_STACK
from webapp_scaler_dev.chaos.crash import CrashSettings, run_crashes
from webapp_scaler_dev.chaos.outage import OutageSettings, run_outage
from webapp_scaler_dev.demo.stack import DemoStack, quiet_step

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: every VM is a network namespace (CI runs as root)"),
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (make system-packages)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """One stack for both faults: the outage runs on the fleet the kills left behind, which must be sound."""
    workdir: Path = tmp_path_factory.mktemp("chaos")
    with DemoStack(CHAOS_STACK, quiet_step, workdir=workdir, keep_workdir=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def crashes(stack: DemoStack) -> dict[str, Any]:
    return asyncio.run(run_crashes(stack, CrashSettings(kills=5, seed=12), progress=lambda _: None))


@pytest.fixture(scope="module")
def outage(stack: DemoStack, crashes: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(run_outage(stack, OutageSettings(seconds=30, seed=12), progress=lambda _: None))


def test_five_kills_break_no_invariant(crashes: dict[str, Any]) -> None:
    assert crashes["kills"] == 5 and crashes["operator_starts"] == 6
    assert crashes["observations"] > 50  # the invariants were watched throughout, not once at the end
    assert crashes["violations"] == []


def test_five_kills_lose_no_session(crashes: dict[str, Any]) -> None:
    sessions = crashes["sessions"]
    assert sessions["checkouts"] > 0
    assert sessions["sessions_lost"] == 0, sessions["losses"]


def test_the_fleet_worked_through_the_kills(crashes: dict[str, Any]) -> None:
    """Kills on an idle fleet would prove nothing: VMs were created and removed in between."""
    assert crashes["events"].get("ScaledUp", 0) >= 1, crashes["events"]
    assert crashes["peak_vms"] >= 2


def test_the_operator_lives_through_the_outage_and_resumes_its_watches(outage: dict[str, Any]) -> None:
    assert outage["outage_s"] >= 30
    assert outage["operator_same_process"]
    assert outage["spec_change_observed_s"] is not None
    assert outage["converged_after_outage_s"] is not None


def test_nothing_acted_on_stale_data_and_nothing_lost_in_the_outage(outage: dict[str, Any]) -> None:
    """The load stays low after the outage, so the scale-in due meanwhile comes after it: its decision
    time is what the staleness check reads (an empty list would have checked nothing)."""
    assert outage["drains_after_outage"], outage["events_after_outage"]
    assert outage["violations"] == []
    assert outage["sessions"]["sessions_lost"] == 0, outage["sessions"]["losses"]


def test_the_operator_logged_the_outage(outage: dict[str, Any]) -> None:
    assert outage["operator_log_during_outage"]["trouble"] >= 1, outage["operator_log_during_outage"]
