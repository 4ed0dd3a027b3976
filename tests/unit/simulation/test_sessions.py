"""The session model: lifetimes, scaling to the peak, determinism."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from webapp_scaler_dev.simulation import sessions
from webapp_scaler_dev.simulation import trace as traces

MODEL = sessions.SessionModel(idle_timeout_seconds=600, mean_visit_seconds=120, max_visit_seconds=900)


def flat_trace(values: Sequence[float], step: int = 60, kind: str = "requests") -> traces.Trace:
    return traces.Trace("flat", kind, 0.0, step, np.asarray(values, dtype=float), 0, 0)  # type: ignore[arg-type]


def test_survival_is_one_through_the_idle_timeout_and_zero_after_the_longest_visit() -> None:
    alive = sessions.survival(MODEL, 15.0)
    assert alive[: 600 // 15 + 1].tolist() == [1.0] * 41
    assert alive[(600 + 120) // 15] == pytest.approx(np.exp(-1))
    assert alive[(600 + 900) // 15] == 0.0


def test_every_session_outlives_the_idle_timeout() -> None:
    stream = sessions.build_stream(flat_trace([100] * 120), MODEL, step_seconds=15, peak_sessions=1000, seed=3)
    assert stream.lifetimes.min() >= 600 // 15
    assert stream.lifetimes.max() <= (600 + 900) // 15


def test_the_expected_peak_is_scaled_to_the_requested_sessions() -> None:
    stream = sessions.build_stream(
        flat_trace([50] * 60 + [200] * 60 + [50] * 60), MODEL, step_seconds=15, peak_sessions=4000, seed=1
    )
    assert stream.expected.max() == pytest.approx(4000)
    realized = stream.concurrent()
    assert abs(int(realized.max()) - 4000) < 4 * np.sqrt(4000)


def test_a_sessions_trace_is_followed() -> None:
    levels = [1000.0] * 60 + [1500.0] * 60
    stream = sessions.build_stream(
        flat_trace(levels, kind="sessions"), MODEL, step_seconds=15, peak_sessions=1500, seed=1
    )
    expected = stream.expected.reshape(-1, 4)[:, -1]
    assert expected[50] == pytest.approx(1000, rel=0.01)
    assert expected[-1] == pytest.approx(1500, rel=0.01)


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    t = flat_trace([80, 120, 60] * 20)
    a = sessions.build_stream(t, MODEL, step_seconds=15, peak_sessions=500, seed=7)
    b = sessions.build_stream(t, MODEL, step_seconds=15, peak_sessions=500, seed=7)
    c = sessions.build_stream(t, MODEL, step_seconds=15, peak_sessions=500, seed=8)
    assert np.array_equal(a.arrivals, b.arrivals) and np.array_equal(a.lifetimes, b.lifetimes)
    assert not np.array_equal(a.lifetimes[:100], c.lifetimes[:100])
