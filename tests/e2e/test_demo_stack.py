"""The whole product on one machine, as `make demo` runs it, in a short form: real control plane, emulated
KubeVirt/CDI with the web shop and the session agent in every VM (each in its own network namespace),
the operator process, HAProxy following the Service's EndpointSlices, and shoppers going through it.

It must scale out, drain the VM with the fewest sessions while that VM keeps serving its logged-in users
through the load balancer, remove it, and lose no session on the way."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from webapp_scaler_dev.demo.load import LoadProfile
from webapp_scaler_dev.demo.session import DemoResult, drive
from webapp_scaler_dev.demo.stack import DemoStack, StackSettings, quiet_step

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: every VM is a network namespace (CI runs as root)"),
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (make system-packages)"),
]

# Small numbers so a scale-out and a complete scale-in fit in about two minutes.
QUICK = StackSettings(
    namespace="demo-e2e",
    target_per_vm=5,
    max_vms=4,
    scrape_s=1,
    window_s=10,
    drain_timeout_s=60,
    idle_timeout_s=8,
    scale_down_stabilization_s=5,
    scale_down_period_s=5,
    clone_s=1.0,
    boot_s=1.0,
    warm_pool=1,
    network="netns",
)
PROFILE = LoadProfile(
    duration_s=60,
    base_users=5,
    peak_users=25,
    ramp_up=0.3,
    hold_peak=0.2,
    ramp_down=0.3,
    actions=(4, 7),
    think_s=(0.4, 1.2),
)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    workdir: Path = tmp_path_factory.mktemp("demo")
    with DemoStack(QUICK, quiet_step, workdir=workdir, keep_workdir=True) as stack:
        return asyncio.run(drive(stack, PROFILE, settle_s=60))


def test_scales_out_to_several_ready_vms(result: DemoResult) -> None:
    assert result.history.peak_ready >= 2, result.history.event_log
    assert result.history.event_counts["ScaledUp"] >= 1


def test_scales_in_by_draining_then_deleting_a_vm(result: DemoResult) -> None:
    drained = result.history.drained_and_deleted
    assert drained, f"no VM was drained and deleted: {result.history.event_log}"
    assert result.history.event_counts["Draining"] >= 1
    assert result.history.event_counts["DeletedDrainedVM"] >= 1
    assert result.history.event_counts["DrainTimeout"] == 0


def test_drained_vm_kept_serving_its_logged_in_users_through_the_load_balancer(result: DemoResult) -> None:
    drained = result.history.drained_and_deleted
    served = {vm: result.stats.served_while_draining[vm] for vm in drained}
    users = {vm: result.stats.drained_users(vm) for vm in drained}
    assert any(count > 0 for count in served.values()), (served, dict(result.stats.served_by))
    assert any(count > 0 for count in users.values()), users


def test_no_session_lost(result: DemoResult) -> None:
    stats = result.stats
    assert stats.users_started > 0 and stats.checkouts > 0
    assert stats.sessions_lost == 0, stats.losses
    assert stats.users_turned_away == 0
