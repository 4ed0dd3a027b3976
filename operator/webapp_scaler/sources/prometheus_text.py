"""Extract one gauge from a Prometheus text exposition, with prometheus-client's own parser.

What an agent exports is a count of people, so only a whole number from 0 to `MAX_SESSIONS_PER_VM`
counts; everything else is a `MetricError` (the only exception this module raises), because a garbage
metric must never be mistaken for zero users (which would scale in), a huge one for a fleet's worth
(one agent reporting 1e308 once scaled a fleet to its maximum, and a sum of two of them is infinite).

The rules follow Prometheus's own scrape loop where it has one (prometheus/prometheus
`scrape/scrape.go`): a body over the size limit fails the scrape (`errBodySizeLimit`), and the same
series twice in one exposition is a duplicate, not two samples to add (`storage.ErrDuplicateSampleForTimestamp`,
counted as "duplicate" by the scrape loop). Prometheus drops the duplicate and keeps the first; we fail
the VM's whole reading instead, because which copy is right cannot be told and a wrong count moves VMs.
"""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

# the engine's bound (1e6 sessions per VM): a count the engine would not use is refused here, with a message
from webapp_scaler.engine.observe import MAX_SESSIONS_PER_VM

__all__ = ["MAX_SESSIONS_PER_VM", "MetricError", "parse_body", "session_count"]


class MetricError(ValueError):
    """The exposition does not carry a usable value of the metric. `kind` names the problem in a word
    that stays the same while the problem does (the numbers in the message may change every scrape), so
    the operator can post one Event per VM per problem, not one per scrape."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_body(body: bytes, metric: str) -> float:
    """`session_count` of a raw HTTP body: not UTF-8 is a `MetricError` too."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MetricError(
            f"the body is not UTF-8 text (byte {error.start}): not a Prometheus exposition", "encoding"
        ) from None
    return session_count(text, metric)


def session_count(text: str, metric: str) -> float:
    """The sum of all series of `metric` (an agent may label them per application context), each a whole
    number in 0..MAX_SESSIONS_PER_VM, each series once, and the sum in that range too."""
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser raises ValueError, IndexError, TypeError, … on garbage
        raise MetricError(f"unparsable metrics: {_short(str(error) or type(error).__name__)}", "unparsable") from None
    seen: set[tuple[tuple[str, str], ...]] = set()
    total = 0.0
    for family in families:
        for sample in family.samples:
            if sample.name != metric:
                continue
            labels = tuple(sorted(sample.labels.items()))
            series = _series(metric, labels)
            if labels in seen:
                raise MetricError(f"duplicated series {series}: each series must appear once", "duplicate")
            seen.add(labels)
            total += _check(series, sample.value)
    if not seen:
        raise MetricError(f"metric {metric} not found", "not-found")
    if total > MAX_SESSIONS_PER_VM:
        raise MetricError(
            f"metric {metric} sums to {total:g} over {len(seen)} series: outside 0..{MAX_SESSIONS_PER_VM}", "range"
        )
    return total


def _check(series: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetricError(f"{series} has an invalid value {value!r}: not a number", "not-number")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise MetricError(f"{series} has an invalid value {number:g}: a session count is finite", "not-finite")
    if not 0 <= number <= MAX_SESSIONS_PER_VM:
        raise MetricError(
            f"{series} has an invalid value {number:g}: outside 0..{MAX_SESSIONS_PER_VM} sessions", "range"
        )
    if not number.is_integer():
        raise MetricError(f"{series} has an invalid value {number:g}: sessions are counted whole", "not-integer")
    return number


def _series(metric: str, labels: tuple[tuple[str, str], ...]) -> str:
    inner = ",".join(f'{k}="{_short(v, 40)}"' for k, v in labels)
    return _short(f"{metric}{{{inner}}}" if labels else metric, 200)


def _short(text: str, limit: int = 160) -> str:
    """A guest controls the text: keep what goes into a condition or an Event short and on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
