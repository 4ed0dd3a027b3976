"""The agent proxy benchmark runs end to end in its short form: every variant (direct, agent, HAProxy,
the agent draining in RefuseNewSessions) serves every request without an error. Its figures are recorded
in docs/benchmarks.md, not asserted: timing belongs to benchmarks, not tests."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "agent_proxy.py"


def _bench() -> ModuleType:
    """benchmarks/ is no package: load the script as a module (registered, so its dataclasses resolve)."""
    name = "agent_proxy_bench"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_haproxy_config_is_a_plain_keep_alive_reverse_proxy() -> None:
    config = _bench().haproxy_config(8000, 9000, None)
    assert "mode http" in config
    assert "option http-keep-alive" in config
    assert "bind 127.0.0.1:8000" in config
    assert "server shop 127.0.0.1:9000" in config
    assert "cookie" not in config  # no stickiness: one server
    assert "nbthread" not in config
    assert "nbthread 1" in _bench().haproxy_config(8000, 9000, 1)


@pytest.mark.skipif(
    shutil.which("wrk") is None or _bench().find_haproxy() is None,
    reason="needs wrk and haproxy: bash hack/install-system-packages.sh",
)
def test_short_run_serves_every_variant_without_errors(tmp_path: Path) -> None:
    out, plot = tmp_path / "agent_proxy.json", tmp_path / "agent_proxy.png"
    command = [
        sys.executable, str(SCRIPT), "--duration", "1", "--rounds", "1", "--connections", "8", "--users", "12",
        "--think-ms", "20", "--warmup", "0", "--json", str(out), "--plot", str(plot),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["variants"] == ["direct", "agent", "haproxy", "agent-draining"]
    assert figures["agent"]["active_sessions"] == 12  # users logged in through the agent: all held
    assert figures["agent"]["rejected_draining"] == 0  # every request while draining carried a held session
    assert figures["agent"]["drains"] == 2  # one drained run per mode
    for mode in ("saturation", "paced"):
        (row,) = figures[mode]
        assert row["connections"] == 8
        for name in figures["variants"]:
            variant = row["variants"][name]
            assert variant["errors"] == 0, (mode, name, variant)
            assert variant["requests"] > 0, (mode, name)
            assert len(variant["rounds"]) == 1
            assert variant["p50_ms"] > 0
            if name == "direct":
                assert variant["proxy_cpu_us"] == 0  # no proxy in the path
            elif mode == "saturation":
                assert variant["proxy_cpu_us"] > 0  # thousands of requests in a second: many clock ticks
            else:
                # paced, one second: a proxy can stay under one clock tick (10 ms) of CPU in /proc's count
                assert variant["proxy_cpu_us"] >= 0
    (summary,) = figures["summary"]
    for key in (
        "throughput_agent_over_haproxy",
        "throughput_agent_over_direct",
        "throughput_haproxy_over_direct",
        "throughput_draining_over_agent",
        "paced_added_p50_ms_agent",
        "paced_added_p50_ms_haproxy",
        "paced_p50_ms_draining_minus_agent",
    ):
        assert isinstance(summary[key], float), key
    assert "agent / haproxy" in result.stdout
    assert plot.stat().st_size > 0
