"""The benchmark in its quick form: each shipped trace, four hours around its peak, every policy, default
settings. It asserts the product's promise; the full week-long runs are `make bench`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from webapp_scaler_dev import cli
from webapp_scaler_dev.simulation import cli as sim_cli
from webapp_scaler_dev.simulation import policies, run
from webapp_scaler_dev.simulation import settings as sim_settings
from webapp_scaler_dev.simulation import trace as traces

TRACES = sorted((REPO / "benchmarks" / "traces").glob("*.csv"))


@pytest.fixture(scope="module", params=TRACES, ids=[p.stem.split("_")[0] for p in TRACES])
def quick_run(request: pytest.FixtureRequest) -> run.Run:
    return sim_cli.simulate_trace(
        traces.load_trace(request.param), sim_settings.SimulationSettings(), list(policies.NAMES), start="peak", hours=4
    )


def test_ours_drops_no_session(quick_run: run.Run) -> None:
    assert quick_run.results["webapp-scaler"].metrics["sessions_dropped"] == 0


def test_ours_has_at_most_half_the_overload_of_hpa_and_hpa_drain(quick_run: run.Run) -> None:
    ours = quick_run.results["webapp-scaler"].metrics["overload_session_minutes"]
    for baseline in ("hpa", "hpa-drain"):
        theirs = quick_run.results[baseline].metrics["overload_session_minutes"]
        assert ours == 0 or ours <= theirs / 2, f"{baseline}: ours {ours}, theirs {theirs}"


def test_ours_uses_no_more_vm_minutes_than_hpa_drain(quick_run: run.Run) -> None:
    ours = quick_run.results["webapp-scaler"].metrics["vm_minutes"]
    assert ours <= quick_run.results["hpa-drain"].metrics["vm_minutes"]


def test_the_session_blind_baselines_drop_sessions_and_hpa_drain_does_not(quick_run: run.Run) -> None:
    r = quick_run.results
    assert r["hpa-drain"].metrics["sessions_dropped"] == 0
    assert r["hpa"].metrics["sessions_dropped"] > 0
    assert r["oracle"].metrics["vm_minutes"] <= min(p.metrics["vm_minutes"] for p in r.values())


def synthetic(values: list[int]) -> traces.Trace:
    return traces.Trace("synthetic", "requests", 0.0, 300, np.asarray(values, dtype=float), 0, 0)


@settings(max_examples=12, deadline=None)
@given(
    values=st.lists(st.integers(0, 1000), min_size=6, max_size=14),
    seed=st.integers(0, 2**31),
    peak_vms=st.integers(2, 12),
)
def test_same_seed_same_result_and_ours_never_cuts_a_session(values: list[int], seed: int, peak_vms: int) -> None:
    trace = synthetic([*values, 1])
    s = sim_settings.SimulationSettings(seed=seed, peak_vms=peak_vms, warmup_seconds=0)
    names = ["webapp-scaler", "hpa", "oracle"]
    first = run.simulate(trace, s, names, score_from_seconds=0)
    second = run.simulate(trace, s, names, score_from_seconds=0)
    for name in names:
        assert first.results[name].metrics == second.results[name].metrics
        assert np.array_equal(first.results[name].vms, second.results[name].vms)
    assert first.results["webapp-scaler"].metrics["sessions_dropped"] == 0


def test_the_cli_writes_json_and_a_plot(tmp_path: Path) -> None:
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    code = cli.main(
        [
            "simulate",
            "--trace",
            str(REPO / "benchmarks" / "traces" / "nasa_1995-07-09_7d_sts70.csv"),
            "--start",
            "peak",
            "--hours",
            "2",
            "--policy",
            "webapp-scaler",
            "--policy",
            "hpa-drain",
            "--seed",
            "5",
            "--workers",
            "1",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    assert code == 0
    document = json.loads(out_json.read_text())
    assert document["settings"]["seed"] == 5
    assert document["settings"]["peak_vms"] == 40
    assert set(document["policies"]) == {"webapp-scaler", "hpa-drain"}
    for metrics in document["policies"].values():
        assert {
            "overload_session_minutes",
            "overload_minutes",
            "vm_minutes",
            "sessions_dropped",
            "scale_events",
            "max_vms",
        } <= set(metrics)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
