"""Synthetic traces: seeded, shaped as documented, readable as CSV, and measured by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_scaler_dev import cli
from webapp_scaler_dev.simulation import synthetic
from webapp_scaler_dev.simulation import trace as traces


@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_a_seed_fixes_the_trace_and_another_seed_draws_another(shape: synthetic.Shape) -> None:
    one, again, other = synthetic.generate(shape, 1), synthetic.generate(shape, 1), synthetic.generate(shape, 2)
    assert np.array_equal(one.values, again.values)
    assert not np.array_equal(one.values, other.values)
    assert (one.kind, one.step_seconds, one.gaps) == ("requests", synthetic.STEP_SECONDS, 0)
    assert one.values.min() >= 0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_flash_crowds_rise_20_to_50_fold_within_three_minutes_and_last_minutes(seed: int) -> None:
    p = synthetic.FlashParams()
    trace, crowds = synthetic.flash(seed, p)
    assert len(crowds) == p.crowds
    starts = [c.at for c in crowds]
    assert min(starts) >= p.first_after_minutes
    assert min(np.diff(starts)) >= p.min_gap_hours * 60
    minutes = np.arange(len(trace.values), dtype=np.float64)
    for c in crowds:
        assert p.factor[0] <= c.factor <= p.factor[1]
        assert p.rise_minutes[0] <= c.rise_minutes <= p.rise_minutes[1] <= 3
        assert c.hold_minutes >= p.hold_minutes[0]
        m = synthetic.crowd_multiplier(c, minutes)
        assert np.all(m[: c.at] == 1.0)
        full = int(np.ceil(c.at + c.rise_minutes))  # the first whole minute at the full multiple
        assert full - c.at <= 3
        holding = m[full : int(c.at + c.rise_minutes + c.hold_minutes)]
        assert len(holding) >= p.hold_minutes[0] - 1 and np.allclose(holding, c.factor)
        assert np.all(np.diff(m[full:]) <= 1e-12)  # then it only falls
        assert m[-1] < m[full]


def test_the_flash_rate_really_jumps_in_the_counts() -> None:
    """Poisson counts included: the minutes of each hold are far above the ten minutes before the rise."""
    trace, crowds = synthetic.flash(7)
    for c in crowds:
        before = trace.values[c.at - 10 : c.at].mean()
        hold = trace.values[int(np.ceil(c.at + c.rise_minutes)) : int(c.at + c.rise_minutes + c.hold_minutes)]
        assert hold.mean() >= 0.5 * c.factor * before


def test_the_diurnal_trace_has_working_hours_and_quiet_nights() -> None:
    p = synthetic.DiurnalParams()
    trace = synthetic.diurnal(3, p)
    assert len(trace.values) == p.days * 1440
    by_hour = trace.values.reshape(p.days, 24, 60).mean(axis=(0, 2))
    assert by_hour[10] > 5 * by_hour[3] and by_hour[15] > 5 * by_hour[3]
    days = trace.values.reshape(p.days, 1440).max(axis=1)
    assert days.max() != days.min()  # each day its own peak


@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_the_csv_reads_back_as_the_same_trace(shape: synthetic.Shape) -> None:
    trace = synthetic.generate(shape, 4)
    back = traces.parse_trace(synthetic.trace_csv(trace).splitlines(), name=trace.name)
    assert (back.kind, back.start, back.step_seconds, back.gaps, back.skipped_lines) == (
        trace.kind,
        trace.start,
        trace.step_seconds,
        0,
        0,
    )
    assert np.array_equal(back.values, trace.values)


def test_the_cli_measures_every_policy_on_synthetic_traces_and_saves_them(tmp_path: Path) -> None:
    summary, saved = tmp_path / "synthetic.json", tmp_path / "traces"
    args = ["simulate", "--synthetic", "flash", "--synthetic", "diurnal", "--seeds", "1", "2"]
    args += ["--arrivals", "random", "--hours", "2", "--workers", "1", "--save-traces", str(saved)]
    assert cli.main([*args, "--summary", str(summary)]) == 0
    document = json.loads(summary.read_text())
    assert {(r["family"], r["seed"]) for r in document["rows"]} == {
        (shape, seed) for shape in ("flash", "diurnal") for seed in (1, 2)
    }
    assert set(document["policies"]) == {"flash", "diurnal"}
    for family, table in document["policies"].items():
        rows = [r for r in document["rows"] if r["family"] == family]
        assert set(table) == set(rows[0]["policies"])
        for name, entry in table.items():
            total = sum(r["policies"][name]["overload_session_minutes"] for r in rows)
            assert entry["overload_session_minutes"] == pytest.approx(total)
            assert entry["sessions_dropped"] == sum(r["policies"][name]["sessions_dropped"] for r in rows)
        assert table["hpa-drain-tuned"]["cost_ratio"] == pytest.approx(1.0)
    assert sorted(p.name for p in saved.glob("*.csv")) == sorted(
        f"synthetic-{shape}-s{seed}.csv" for shape in ("flash", "diurnal") for seed in (1, 2)
    )
    replayed = traces.load_trace(saved / "synthetic-flash-s2.csv")
    assert np.array_equal(replayed.values, synthetic.generate("flash", 2).values)
    markdown = summary.with_suffix(".md").read_text()
    assert markdown.count("| webapp-scaler |") == 2  # one per-policy table per shape
