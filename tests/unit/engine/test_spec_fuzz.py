"""Fuzzing the spec parser the engine reads (`ScalingSpec.from_spec`) and the one `webapp-scaler render` and
the operator use (`webappscaling.parse_valid`): whatever JSON a user or a bad client writes, the result is a
spec or a `SpecError` whose message names a field — never a TypeError, KeyError or AttributeError, which
would end the operator's round instead of becoming the InvalidSpec condition."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp_scaler import webappscaling

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID: dict[str, Any] = {
    "goldenImage": {"name": "golden"},
    "vmTemplate": {"spec": {"domain": {"devices": {}}}},
    "replicas": {"min": 1, "max": 4},
    "sessions": {
        "targetPerVM": 10,
        "scrapeIntervalSeconds": 15,
        "scrapeTimeoutSeconds": 5,
        "movingAverage": {"kind": "Simple", "windowSeconds": 60},
        "agent": {"source": "proxy", "port": 9100, "metric": "webapp_active_sessions"},
        "fallback": {"failureThreshold": 3, "replicas": 2},
    },
    "behavior": {"tolerance": 0.1, "scaleDown": {"stabilizationWindowSeconds": 0, "policies": []}},
    "scaleIn": {"drain": {"timeoutSeconds": 600, "mode": "RefuseNewSessions"}},
    "warmPool": {"size": 1},
    "prediction": {"enabled": False},
    "service": {"port": 80},
}

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)


def _paths(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    return found


PATHS = _paths(VALID)[1:]


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    tree = copy.deepcopy(tree)
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


def _error(parse: Callable[[], object]) -> str | None:
    """The SpecError's message, None when it parsed: anything else raised fails the test."""
    try:
        parse()
    except webappscaling.SpecError as error:
        return str(error)
    return None


def _parse_both(spec: Any) -> None:
    body = {"metadata": {"name": "shop", "namespace": "prod"}, "spec": spec}
    for error in (
        _error(lambda: webappscaling.ScalingSpec.from_spec(spec)),
        _error(lambda: webappscaling.parse_valid(body)),
    ):
        assert error is None or error.startswith("spec"), error


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=3))
def test_a_valid_spec_with_any_field_replaced_parses_or_names_the_field(
    changes: list[tuple[tuple[str, ...], Any]],
) -> None:
    spec = VALID
    for path, value in changes:
        try:
            spec = _set(spec, path, value)
        except (KeyError, TypeError):
            continue  # an earlier change replaced a parent of this path
    _parse_both(spec)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted({p[0] for p in PATHS})), json_values, max_size=6))
def test_any_json_object_parses_or_names_the_field(spec: dict[str, Any]) -> None:
    _parse_both(spec)


@FUZZ
@given(st.dictionaries(st.sampled_from(["failureThreshold", "replicas", "other"]), json_values, max_size=3))
def test_the_fallback_parses_or_names_its_field(fallback: dict[str, Any]) -> None:
    error = _error(lambda: webappscaling.ScalingSpec.from_spec({"sessions": {"fallback": fallback}}))
    if error is not None:
        assert error.startswith("spec.sessions.fallback"), error
    else:
        parsed = webappscaling.ScalingSpec.from_spec({"sessions": {"fallback": fallback}}).sessions.fallback
        assert 1 <= parsed.failure_threshold <= 1000
        assert parsed.replicas is None or (isinstance(parsed.replicas, int) and parsed.replicas >= 0)
