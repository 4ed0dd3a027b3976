"""The operator's own Prometheus metrics, labelled per WebAppScaling (namespace, name)."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

LABELS = ("namespace", "name")

RECONCILE_SECONDS = Histogram(
    "webapp_scaler_reconcile_duration_seconds",
    "Time of one observe-scrape-decide-act round of a WebAppScaling.",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCRAPE_SECONDS = Histogram(
    "webapp_scaler_scrape_duration_seconds",
    "Time to read one VM's session agent.",
    LABELS,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SCRAPE_ERRORS = Counter("webapp_scaler_scrape_errors_total", "Agent scrapes that gave no usable session count.", LABELS)
DECISIONS = Counter(
    "webapp_scaler_decisions_total",
    "Scale actions taken, by action (create, create_warm, start, drain, return, delete).",
    (*LABELS, "action"),
)
DESIRED = Gauge("webapp_scaler_desired_replicas", "VMs the scaler wants.", LABELS)
CURRENT = Gauge("webapp_scaler_current_replicas", "VMs serving or booting (not draining, not warm).", LABELS)
READY = Gauge("webapp_scaler_ready_replicas", "VMs ready for users.", LABELS)
SESSIONS = Gauge("webapp_scaler_sessions", "Active sessions at the last scrape, all VMs.", LABELS)
SESSIONS_AVERAGE = Gauge("webapp_scaler_sessions_average", "Moving average of the active sessions.", LABELS)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted WebAppScaling's series, so dashboards do not show ghosts."""
    metrics = (RECONCILE_SECONDS, SCRAPE_SECONDS, SCRAPE_ERRORS, DESIRED, CURRENT, READY, SESSIONS, SESSIONS_AVERAGE)
    for metric in metrics:
        with contextlib.suppress(KeyError):
            metric.remove(namespace, name)
