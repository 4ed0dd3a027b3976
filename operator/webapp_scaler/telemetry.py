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
SESSIONS_FORECAST = Gauge(
    "webapp_scaler_sessions_forecast", "Sessions predicted one boot time ahead (spec.prediction).", LABELS
)
REPLICAS = Gauge(
    "webapp_scaler_replicas", "VMs by phase (Cloning, Booting, Ready, Draining, Warm, …).", (*LABELS, "phase")
)
MAX_REPLICAS = Gauge("webapp_scaler_max_replicas", "spec.replicas.max.", LABELS)
TARGET_PER_VM = Gauge("webapp_scaler_target_sessions_per_vm", "spec.sessions.targetPerVM.", LABELS)
DRAIN_TIMEOUT_SECONDS = Gauge("webapp_scaler_drain_timeout_seconds", "spec.scaleIn.drain.timeoutSeconds.", LABELS)
OLDEST_DRAIN_SECONDS = Gauge(
    "webapp_scaler_oldest_drain_seconds", "How long the longest drain in progress has lasted (0: none).", LABELS
)
DRAIN_TIMEOUTS = Counter(
    "webapp_scaler_drain_timeouts_total",
    "Draining VMs deleted at the drain timeout while holding sessions (or with no session count).",
    LABELS,
)
CREATE_FAILURES = Counter("webapp_scaler_vm_create_failures_total", "VM creations the apiserver refused.", LABELS)
CONDITION = Gauge(
    "webapp_scaler_condition", "Status conditions: 1 for True, 0 for False or Unknown (not True).", (*LABELS, "type")
)
DECISION_REASONS = Counter(
    "webapp_scaler_decision_reasons_total",
    "Decisions by the engine's reason (TooManyReplicas: held at spec.replicas.max, WithinTolerance, …).",
    (*LABELS, "reason"),
)

LEADER = Gauge("webapp_scaler_leader", "1 while this replica holds the leader election Lease and acts, else 0.")
STANDALONE_CONFLICT = Gauge(
    "webapp_scaler_standalone_conflict",
    "1 while this standalone operator sees another operator renewing its Lease (two would act at once).",
)

# the steps of a round; each runs whether or not another failed (webapp_scaler.reconcile)
ROUND_STEPS = ("golden_image", "service", "ingress", "httproute", "drain_tokens", "actions", "status")
ROUND_FAILURES = Counter(
    "webapp_scaler_round_failures_total",
    "Round steps that failed, by step (service, ingress, httproute, drain_tokens, actions, status, "
    "golden_image); the round's other steps still ran.",
    (*LABELS, "step"),
)

COUNTERS = (SCRAPE_ERRORS, DRAIN_TIMEOUTS, CREATE_FAILURES)
"""Exported at 0 from a WebAppScaling's first round on: `increase()` and `rate()` see the first event,
and a panel of them has a line before anything failed."""


def start(namespace: str, name: str) -> None:
    """Export the counters of `COUNTERS` at 0 (idempotent: an existing count is kept)."""
    for counter in COUNTERS:
        counter.labels(namespace, name)
    for step in ROUND_STEPS:
        ROUND_FAILURES.labels(namespace, name, step)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted WebAppScaling's series, so dashboards do not show ghosts."""
    metrics = (
        RECONCILE_SECONDS,
        SCRAPE_SECONDS,
        *COUNTERS,
        DESIRED,
        CURRENT,
        READY,
        SESSIONS,
        SESSIONS_AVERAGE,
        SESSIONS_FORECAST,
        MAX_REPLICAS,
        TARGET_PER_VM,
        DRAIN_TIMEOUT_SECONDS,
        OLDEST_DRAIN_SECONDS,
    )
    for metric in metrics:
        with contextlib.suppress(KeyError):
            metric.remove(namespace, name)
    for labelled in (DECISIONS, REPLICAS, CONDITION, DECISION_REASONS, ROUND_FAILURES):
        labelled.remove_by_labels({"namespace": namespace, "name": name})
