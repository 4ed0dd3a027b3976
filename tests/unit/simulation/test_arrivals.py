"""Arrival modes and visit laws: where a trace step's users fall, and how long heavy-tailed visits last."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_scaler_dev.simulation import sessions
from webapp_scaler_dev.simulation import trace as traces


@settings(max_examples=40, deadline=None)
@given(
    groups=st.lists(st.floats(0, 500), min_size=1, max_size=12),
    per_step=st.integers(1, 20),
    cut=st.integers(0, 19),
    seed=st.integers(0, 2**31),
)
def test_random_arrivals_stay_inside_their_trace_step(groups: list[float], per_step: int, cut: int, seed: int) -> None:
    rates = np.repeat(np.asarray(groups) / per_step, per_step)
    rates = rates[: max(1, len(rates) - cut % per_step)]  # a partial last trace step too
    first = sessions.random_arrivals(rates, per_step, np.random.default_rng(seed))
    again = sessions.random_arrivals(rates, per_step, np.random.default_rng(seed))
    assert np.array_equal(first, again)
    assert first.shape == rates.shape and first.min() >= 0
    assert not first[rates == 0].any()  # a trace step with no traffic gets no one


def test_random_arrivals_keep_each_trace_steps_mean_and_bunch_inside_it() -> None:
    per_step, groups, rate = 20, 4000, 200.0
    rates = np.full(per_step * groups, rate / per_step)
    counts = sessions.random_arrivals(rates, per_step, np.random.default_rng(5)).reshape(groups, per_step)
    totals = counts.sum(axis=1)
    assert abs(totals.mean() - rate) < 5 * np.sqrt(rate / groups)  # Poisson around the trace's count
    inside = counts / totals[:, None]
    # even spreading would give every sub-step 1/per_step of its step, give or take Poisson noise;
    # a random density gives some sub-steps several times that
    assert inside.max(axis=1).mean() > 2.5 / per_step


def flat(values: list[float]) -> traces.Trace:
    return traces.Trace("flat", "requests", 0.0, 300, np.asarray(values, dtype=float), 0, 0)


@pytest.mark.parametrize("mode", sessions.ARRIVAL_MODES)
def test_both_modes_scale_to_the_same_expected_peak(mode: sessions.ArrivalMode) -> None:
    model = sessions.SessionModel()
    stream = sessions.build_stream(flat([100] * 48), model, step_seconds=15, peak_sessions=2000, seed=2, arrivals=mode)
    assert stream.expected.max() == pytest.approx(2000)
    assert abs(int(stream.concurrent()[-1]) - 2000) < 6 * np.sqrt(2000)


def test_even_arrivals_are_poisson_per_step_as_before() -> None:
    model = sessions.SessionModel()
    stream = sessions.build_stream(flat([100] * 8), model, step_seconds=15, peak_sessions=500, seed=4, arrivals="even")
    rates = sessions.per_step_rate(flat([100] * 8), 15) * stream.scale
    assert np.array_equal(stream.arrivals, np.random.default_rng(4).poisson(rates))


def test_heavy_visits_follow_their_survival_and_outlive_a_drain_timeout() -> None:
    model = sessions.SessionModel(visits="heavy", max_visit_seconds=sessions.HEAVY_MAX_VISIT_SECONDS)
    visits = model.draw_visits(np.random.default_rng(1), 200_000)
    for age in (60.0, 600.0, 3600.0):
        expected = float(model.visit_survival(np.asarray([age]))[0])
        assert (visits > age).mean() == pytest.approx(expected, abs=0.01)
    light = sessions.SessionModel().draw_visits(np.random.default_rng(1), 200_000)
    drain_timeout = 3600.0
    beyond = model.idle_timeout_seconds + visits > drain_timeout
    assert beyond.any() and not (sessions.SessionModel().idle_timeout_seconds + light > drain_timeout).any()
    assert visits.max() <= model.max_visit_seconds


def test_survival_uses_the_visit_law() -> None:
    heavy = sessions.SessionModel(visits="heavy", max_visit_seconds=7200)
    light = sessions.SessionModel(max_visit_seconds=7200)
    alive_heavy, alive_light = sessions.survival(heavy, 15.0), sessions.survival(light, 15.0)
    late = round((heavy.idle_timeout_seconds + 1800) / 15)
    assert alive_heavy[late] > alive_light[late]  # the same mean, a fatter tail
