"""Trace parsing: headers, timestamp forms, steps, gaps and garbage lines."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from tests.conftest import REPO
from webapp_scaler_dev.simulation import trace as traces


def parse(text: str) -> traces.Trace:
    return traces.parse_trace(text.strip().splitlines(), name="t")


def test_one_minute_requests_with_offsets() -> None:
    t = parse(
        """
timestamp,requests
1995-07-09T00:00:00-04:00,22
1995-07-09T00:01:00-04:00,21
1995-07-09T00:02:00-04:00,18
"""
    )
    assert (t.kind, t.step_seconds, t.gaps, t.skipped_lines) == ("requests", 60, 0, 0)
    assert t.values.tolist() == [22, 21, 18]
    assert t.start == datetime.datetime(1995, 7, 9, 4, tzinfo=datetime.UTC).timestamp()


def test_five_minute_sessions_with_a_gap_and_epoch_timestamps() -> None:
    t = parse("timestamp,sessions\n0,100\n300,200\n1200,500\n1500,400\n")
    assert (t.kind, t.step_seconds) == ("sessions", 300)
    assert t.values.tolist() == [100, 200, 300, 400, 500, 400]  # 600 and 900 interpolated
    assert t.gaps == 2


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("2014-04-10T00:09:00,abc", id="text-value"),
        pytest.param("2014-04-10T00:09:00,-4", id="negative"),
        pytest.param("2014-04-10T00:09:00,nan", id="nan"),
        pytest.param("2014-04-10T00:09:00,inf", id="inf"),
        pytest.param("yesterday,40", id="bad-timestamp"),
        pytest.param("2014-04-10T00:09:00", id="one-field"),
    ],
)
def test_garbage_lines_become_interpolated_gaps(bad: str) -> None:
    t = parse(f"timestamp,requests\n2014-04-10T00:04:00Z,10\n{bad}\n2014-04-10T00:14:00Z,30\n2014-04-10T00:19:00Z,40")
    assert (t.step_seconds, t.skipped_lines, t.gaps) == (300, 1, 1)
    assert t.values.tolist() == [10, 20, 30, 40]


def test_garbage_between_regular_rows_is_filled() -> None:
    t = parse("timestamp,requests\n0,10\n60,x\n120,30\n180,40\n\n240,50\n")
    assert t.step_seconds == 60
    assert t.values.tolist() == [10, 20, 30, 40, 50]
    assert (t.gaps, t.skipped_lines) == (1, 1)


def test_a_recorded_zero_stays_zero() -> None:
    t = parse("timestamp,requests\n0,10\n60,0\n120,30\n")
    assert t.values.tolist() == [10, 0, 30]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("time,requests\n0,1\n60,2\n", id="wrong-header"),
        pytest.param("timestamp,bytes\n0,1\n60,2\n", id="unknown-kind"),
        pytest.param("timestamp,requests\n0,1\n", id="one-row"),
        pytest.param("", id="empty"),
    ],
)
def test_unusable_files_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^t: "):
        traces.parse_trace(text.splitlines(), name="t")


@pytest.mark.parametrize(
    ("name", "step", "rows", "gaps"),
    [
        pytest.param("wc98_1998-06-20_7d_groupstage", 60, 7 * 1440, 0, id="wc98"),
        pytest.param("nasa_1995-07-09_7d_sts70", 60, 7 * 1440, 0, id="nasa"),
        pytest.param("aws_elb_nab_2014-04-10_14d_5min", 300, 4032, 8, id="aws-8-samples-missing"),
    ],
)
def test_the_shipped_traces_load(name: str, step: int, rows: int, gaps: int) -> None:
    t = traces.load_trace(REPO / "benchmarks" / "traces" / f"{name}.csv")
    assert (t.step_seconds, t.gaps, t.skipped_lines) == (step, gaps, 0)
    assert len(t.values) == rows + gaps
    assert np.isfinite(t.values).all() and (t.values >= 0).all()


def test_window_and_peak() -> None:
    t = parse("timestamp,requests\n0,1\n60,5\n120,9\n180,2\n240,1\n")
    assert traces.peak_time(t) == 120
    w = traces.window(t, start=60, hours=2 / 60)
    assert (w.start, w.values.tolist()) == (60, [5, 9])
