"""The scale benchmark's 10×10 form runs end to end (its figures go to docs/benchmarks.md; no timing is
asserted here: these machines are shared). What is asserted holds on any machine: the fleet reached its
size, the rises made the operator clone, the restart was followed by a round of every object, and the
operator's hot path has no list request and no status patch a round did not need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = [pytest.mark.cluster]


def test_the_10x10_scale_benchmark_produces_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--objects", "10", "--vms-per-object", "10"]
    # a short form: every object rises once in the minute of rises (its cycle is that minute)
    argv += ["--scrape-interval", "5", "--ramp", "45", "--minutes", "1", "--period", "60", "--hold", "20"]
    argv += ["--json", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert (figures["objects"], figures["vms"]) == (10, 100)
    for key in ("cpu_cores_avg", "cpu_cores_peak", "rss_mib_max", "decision_latency_p50_s", "decision_latency_p99_s"):
        assert isinstance(figures[key], float), key
    assert figures["vm_creates_steady"] > 0  # every object rose at least once: the operator cloned
    assert figures["decision_latency_s"]["count"] > 0
    assert figures["restart_convergence_s"] is not None
    assert figures["steady_list_requests_per_s"] == {}, "a list request on the hot path"
    assert 0 < figures["status_patches_per_round"] <= 1
    assert "one operator replica" in result.stdout
