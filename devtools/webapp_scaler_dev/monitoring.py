"""monitoring/ as data: the alert rules and the dashboard's panel queries, with the dashboard's template
variables filled in, and the metric names a PromQL expression reads.

The demo loads the rules into its Prometheus; the tests run every query against it and check every
metric name against what the operator and the session agent export.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
ALERTS = MONITORING / "alerts.yaml"
ALERTS_TEST = MONITORING / "alerts_test.yaml"
DASHBOARD = MONITORING / "dashboard.json"

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_NUMBER_UNIT = re.compile(r"^\d")


@dataclass(frozen=True)
class Query:
    """One PromQL expression of monitoring/: where it is (an alert's name, a panel's title) and its text."""

    where: str
    expr: str


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_queries() -> list[Query]:
    return [Query(f"alert {rule['alert']}", str(rule["expr"])) for rule in alert_rules()]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every panel with queries, those inside collapsed rows included."""
    found = []
    for panel in (board or dashboard())["panels"]:
        found += [panel, *panel.get("panels", [])]
    return [p for p in found if p.get("targets")]


def panel_queries(board: dict[str, Any] | None = None) -> list[Query]:
    return [
        Query(f"panel {panel['title']!r} {target.get('refId', '')}".strip(), str(target["expr"]))
        for panel in panels(board)
        for target in panel["targets"]
    ]


def substitute(expr: str, *, namespace: str, name: str, rate_interval: str = "1m") -> str:
    """The expression as Grafana sends it for one WebAppScaling: its template variables replaced."""
    for variable, value in (("namespace", namespace), ("name", name), ("__rate_interval", rate_interval)):
        expr = re.sub(rf"\$\{{{variable}\}}|\${variable}\b", value, expr)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: what is left once strings, label matchers, ranges,
    grouping clauses, function names, keywords and numbers are taken out. A simple reading of PromQL,
    enough for the expressions of monitoring/ (no metric name inside a label matcher)."""
    text = _STRING.sub("", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = {m.group(1) for m in _NAME.finditer(text)}
    return {n for n in names if n not in KEYWORDS and not _NUMBER_UNIT.match(n)}
