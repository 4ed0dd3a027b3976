"""The reaction benchmark runs end to end (its figures are recorded in docs/benchmarks.md, not asserted:
timing belongs to benchmarks, not tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: every VM is a network namespace (CI runs as root)"),
]


def test_reaction_benchmark_produces_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "reaction.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "reaction.py"), "--trials", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["trials"] == 2
    assert figures["scrape_interval_seconds"] == 1
    assert 0 < figures["min_seconds"] <= figures["p50_seconds"] <= figures["max_seconds"]
    assert "VM create request" in result.stdout
