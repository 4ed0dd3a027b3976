"""Prometheus exposition of a source's reading.

A collector reads the source at scrape time (after `refresh`) instead of keeping its own copies of
the numbers: every scrape reports the exact live count, and the proxy's hot path touches no metric
object. Session ids never reach this module; only counts do.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from session_agent.drain import DRAIN_MODES, DrainState
from session_agent.sources.base import SessionSource

ACTIVE_SESSIONS = "webapp_active_sessions"


class SessionCollector(Collector):
    def __init__(self, source: SessionSource, drain: DrainState) -> None:
        self._source = source
        self._drain = drain
        self.source_up = True

    def collect(self) -> Iterator[Metric]:
        stats = self._source.stats()
        labels = ["source"]
        values = [self._source.name]
        active = GaugeMetricFamily(ACTIVE_SESSIONS, "Active user sessions of the web application", labels=labels)
        active.add_metric(values, stats.active)
        yield active
        counters = (
            ("webapp_sessions_started", "Sessions seen for the first time", stats.started),
            ("webapp_sessions_evicted", "Sessions dropped from tracking by the memory cap", stats.evicted),
            ("webapp_requests", "HTTP requests seen by the agent", stats.requests),
        )
        for name, documentation, value in counters:
            if value is not None:
                counter = CounterMetricFamily(name, documentation, labels=labels)
                counter.add_metric(values, value)
                yield counter
        if stats.expired is not None or stats.logged_out is not None:
            expired = CounterMetricFamily(
                "webapp_sessions_expired",
                "Sessions that ended: idle past the session timeout, or cleared by the application",
                labels=[*labels, "reason"],
            )
            expired.add_metric([*values, "idle"], stats.expired or 0)
            expired.add_metric([*values, "logout"], stats.logged_out or 0)
            yield expired
        if stats.rejected:
            rejected = CounterMetricFamily(
                "webapp_proxy_rejected", "Requests the proxy answered itself", labels=[*labels, "reason"]
            )
            for reason, count in sorted(stats.rejected.items()):
                rejected.add_metric([*values, reason], count)
            yield rejected
        drain = self._drain
        draining = GaugeMetricFamily("webapp_draining", "1 while the agent drains (in either mode)")
        draining.add_metric([], 1 if drain.draining else 0)
        yield draining
        mode = GaugeMetricFamily(
            "webapp_drain_mode", "1 for the mode of the drain in progress, 0 for the others", labels=["mode"]
        )
        supported = GaugeMetricFamily(
            "webapp_drain_modes_supported", "1 for each drain mode this agent's source can honour", labels=["mode"]
        )
        for name in DRAIN_MODES:
            mode.add_metric([name], 1 if drain.draining and drain.mode == name else 0)
            supported.add_metric([name], 1 if name in self._source.drain_modes else 0)
        yield mode
        yield supported
        up = GaugeMetricFamily("webapp_session_source_up", "1 when the last reading of the source succeeded")
        up.add_metric([], 1 if self.source_up else 0)
        yield up


def build_registry(collector: SessionCollector) -> CollectorRegistry:
    """A registry of our own: no process-global state, so several agents can live in one test process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
