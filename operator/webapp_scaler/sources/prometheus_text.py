"""Extract one gauge from a Prometheus text exposition, with prometheus-client's own parser.

Only finite, non-negative values count as sessions; everything else is a clear error, because a
garbage metric must never be mistaken for zero users (which would scale in) or infinity (scale out).
"""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families


class MetricError(ValueError):
    """The exposition does not carry a usable value of the metric."""


def session_count(text: str, metric: str) -> float:
    """The sum of all samples of `metric` (an agent may label them per application context)."""
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser raises ValueError, IndexError, TypeError on garbage
        raise MetricError(f"unparsable metrics: {error}") from error
    values = [s.value for family in families for s in family.samples if s.name == metric]
    if not values:
        raise MetricError(f"metric {metric} not found")
    for value in values:
        if not math.isfinite(value) or value < 0:
            raise MetricError(f"metric {metric} has an invalid value {value}")
    return float(sum(values))
