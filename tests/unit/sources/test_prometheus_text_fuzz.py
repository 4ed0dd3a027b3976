"""Fuzzing the exposition parser with hypothesis: a guest writes these bytes, so no input may raise anything but
`MetricError` (an exception out of the parser would end the whole round for every VM), and every count that
comes out is one the engine and the status's integer fields can take. Valid expositions, with labels, other
metrics, comments and timestamps around, must parse to exactly their sum."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp_scaler.sources.prometheus_text import MAX_SESSIONS_PER_VM, MetricError, parse_body, session_count

METRIC = "webapp_active_sessions"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text near the format: metric names, braces, quotes, numbers and the special values, so the fuzz reaches
# the parser's value and label code and not only its first "invalid metric name"
pieces = st.sampled_from(
    [METRIC, "other_metric", "{", "}", "=", '"', ",", " ", "\n", "\t", "#", "# TYPE ", "# HELP ", "gauge", "counter",
     "NaN", "+Inf", "-Inf", "1e308", "-1", "0", "10", "2.5", "1e6", "1000001", 'context="/a"', "\\", "\x00", "é"]
)  # fmt: skip
near_text = st.lists(st.one_of(pieces, st.text(max_size=5)), max_size=40).map("".join)


def _outcome(parse: Callable[[], float]) -> float | MetricError:
    """The count, or the MetricError raised: anything else raised fails the test."""
    try:
        return parse()
    except MetricError as error:
        return error


def _check(result: float | MetricError) -> None:
    if isinstance(result, MetricError):
        assert str(result) and result.kind
        assert "\n" not in str(result)  # it goes into a condition and an Event on one line
        return
    assert 0 <= result <= MAX_SESSIONS_PER_VM
    assert math.isfinite(result) and result.is_integer()
    assert isinstance(round(result), int)


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_raise_metric_error(body: bytes) -> None:
    _check(_outcome(lambda: parse_body(body, METRIC)))


@FUZZ
@given(st.one_of(near_text, st.text(max_size=500)))
def test_arbitrary_text_parses_or_raises_metric_error(text: str) -> None:
    _check(_outcome(lambda: session_count(text, METRIC)))


label_values = st.text(st.characters(codec="utf-8", exclude_characters='"\\\n'), max_size=8)
label_sets = st.dictionaries(st.sampled_from(["context", "app", "pod"]), label_values, max_size=3)


def _line(labels: dict[str, str], value: int, timestamp: bool) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{METRIC}{{{inner}}} {value}" + (" 1700000000000" if timestamp else "")


@FUZZ
@given(
    series=st.lists(label_sets, min_size=1, max_size=6, unique_by=lambda d: tuple(sorted(d.items()))),
    values=st.lists(st.integers(0, 400_000), min_size=6, max_size=6),
    noise=st.lists(st.integers(0, 10**9), max_size=3),
    typed=st.booleans(),
    timestamps=st.booleans(),
    as_float=st.booleans(),
)
def test_a_valid_exposition_parses_to_its_sum(
    series: list[dict[str, str]], values: list[int], noise: list[int], typed: bool, timestamps: bool, as_float: bool
) -> None:
    lines = [f"# HELP {METRIC} Active sessions.", f"# TYPE {METRIC} gauge"] if typed else []
    lines += [f'other_metric{{i="{i}"}} {n}' for i, n in enumerate(noise)]  # other metrics: any value
    for labels, value in zip(series, values, strict=False):
        line = _line(labels, value, timestamps)
        lines.append(line.replace(f" {value}", f" {value}.0", 1) if as_float else line)
    expected = sum(values[: len(series)])
    text = "\n".join(lines) + "\n"
    if expected > MAX_SESSIONS_PER_VM:
        with pytest.raises(MetricError, match="sums to") as raised:
            session_count(text, METRIC)
        assert raised.value.kind == "range"
    else:
        assert session_count(text, METRIC) == expected
        assert parse_body(text.encode(), METRIC) == expected


@FUZZ
@given(series=st.lists(label_sets, min_size=1, max_size=4), which=st.integers(0, 3), value=st.integers(0, 100))
def test_a_series_twice_is_refused_never_summed(series: list[dict[str, str]], which: int, value: int) -> None:
    repeated = series[which % len(series)]
    reordered = dict(reversed(list(repeated.items())))  # the same labels in another order: the same series
    lines = [_line(labels, value, False) for labels in series] + [_line(reordered, value, False)]
    with pytest.raises(MetricError, match="duplicated series") as raised:
        session_count("\n".join(lines) + "\n", METRIC)
    assert raised.value.kind == "duplicate"
