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


def test_ours_has_at_most_half_the_overload_of_every_hpa(quick_run: run.Run) -> None:
    ours = quick_run.results["webapp-scaler"].metrics["overload_session_minutes"]
    for baseline in ("hpa", "hpa-drain", "hpa-drain-tuned"):
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
    for name in ("hpa-drain-tuned", "oracle-drain"):
        assert r[name].metrics["sessions_dropped"] == 0


def test_no_session_keeping_policy_beats_the_drain_floor(quick_run: run.Run) -> None:
    floor = quick_run.results["oracle-drain"].metrics["vm_minutes"]
    for name in ("webapp-scaler", "hpa-drain", "hpa-drain-tuned"):
        assert quick_run.results[name].metrics["vm_minutes"] >= floor, name


def test_cost_counts_every_warm_vm_and_clone(quick_run: run.Run) -> None:
    for name, result in quick_run.results.items():
        m = result.metrics
        assert m["cost_vm_minutes"] >= m["vm_minutes"], name  # clones are added, never taken off
        if m["warm_vm_minutes"] == 0 and name not in policies.ORACLES:
            assert m["cost_vm_minutes"] == m["vm_minutes"], name  # a cold fleet's clones are in its running time


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


@settings(max_examples=10, deadline=None)
@given(warm_cost=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_cost_is_linear_in_the_warm_cost_and_full_at_one(warm_cost: float, seed: int) -> None:
    trace = synthetic([200, 900, 300, 1000, 100, 50, 600, 1])
    names = ["webapp-scaler", "hpa-drain-tuned"]

    def cost(f: float) -> dict[str, dict[str, float]]:
        s = sim_settings.SimulationSettings(seed=seed, peak_vms=8, warmup_seconds=0, warm_cost=f)
        return {n: r.metrics for n, r in run.simulate(trace, s, names, score_from_seconds=0).results.items()}

    free, full, here = cost(0.0), cost(1.0), cost(warm_cost)
    for name in names:
        stopped = full[name]["cost_vm_minutes"] - free[name]["cost_vm_minutes"]
        assert here[name]["cost_vm_minutes"] == pytest.approx(free[name]["cost_vm_minutes"] + warm_cost * stopped)
        # at one, a stopped VM costs what a running one does: every VM-minute, warm or not, counts once
        assert full[name]["cost_vm_minutes"] == pytest.approx(full[name]["vm_minutes"] + full[name]["warm_vm_minutes"])
        assert here[name]["vm_minutes"] == free[name]["vm_minutes"]  # the warm cost changes no decision
    assert full["hpa-drain-tuned"]["cost_vm_minutes"] == full["hpa-drain-tuned"]["vm_minutes"]  # no warm pool


def test_the_json_holds_every_policy_and_the_settings(tmp_path: Path) -> None:
    out_json = tmp_path / "all.json"
    args = ["simulate", "--trace", str(REPO / "benchmarks" / "traces" / "wc98_1998-06-20_7d_groupstage.csv")]
    args += ["--start", "peak", "--hours", "1", "--workers", "1", "--warm-cost", "0.25", "--arrivals", "even"]
    assert cli.main([*args, "--json", str(out_json)]) == 0
    document = json.loads(out_json.read_text())
    assert set(document["policies"]) == set(policies.NAMES)
    assert {
        "webapp-scaler",
        "hpa",
        "hpa-drain",
        "hpa-drain-tuned",
        "keda",
        "patent-sma",
        "oracle",
        "oracle-drain",
    } == set(policies.NAMES)
    for metrics in document["policies"].values():
        assert {"overload_session_minutes", "vm_minutes", "cost_vm_minutes", "sessions_dropped"} <= set(metrics)
    settings_used = document["settings"]
    assert (settings_used["warm_cost"], settings_used["arrivals"]) == (0.25, "even")
    assert settings_used["longest_session_seconds"] > settings_used["session_model"]["idle_timeout_seconds"]


def test_the_matrix_compares_ours_with_the_tuned_hpa_per_seed_and_arrival_mode(tmp_path: Path) -> None:
    summary = tmp_path / "matrix.json"
    args = ["simulate", "--trace", str(REPO / "benchmarks" / "traces" / "nasa_1995-07-09_7d_sts70.csv")]
    args += ["--start", "peak", "--hours", "1", "--workers", "1", "--seeds", "1", "2"]
    args += ["--arrivals", "random", "--arrivals", "even", "--policy", "webapp-scaler", "--policy", "hpa-drain-tuned"]
    assert cli.main([*args, "--summary", str(summary)]) == 0
    document = json.loads(summary.read_text())
    rows = document["rows"]
    assert {(r["seed"], r["arrivals"]) for r in rows} == {(1, "random"), (1, "even"), (2, "random"), (2, "even")}
    for r in rows:
        theirs = r["hpa-drain-tuned_cost_vm_minutes"]
        assert r["cost_ratio"] == pytest.approx(r["ours_cost_vm_minutes"] / theirs)
        assert set(r["goal"]) and all(isinstance(ok, bool) for ok in r["goal"].values())
    assert summary.with_suffix(".md").read_text().count("\n| nasa |") == len(rows)


def test_heavy_visits_and_no_returns_reach_the_settings(tmp_path: Path) -> None:
    out_json = tmp_path / "heavy.json"
    args = ["simulate", "--trace", str(REPO / "benchmarks" / "traces" / "nasa_1995-07-09_7d_sts70.csv")]
    args += ["--start", "peak", "--hours", "1", "--workers", "1", "--visits", "heavy", "--no-returns"]
    assert cli.main([*args, "--policy", "hpa-drain-tuned", "--json", str(out_json)]) == 0
    document = json.loads(out_json.read_text())
    model = document["settings"]["session_model"]
    assert model["visits"] == "heavy" and model["max_visit_seconds"] > document["settings"]["drain_timeout_seconds"]
    assert document["settings"]["dropped_return"] is False


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
