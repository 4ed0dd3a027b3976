"""Turning what the scale benchmark recorded into its figures: pure functions over the audit log, the
farm's rounds, the VM watch and the operator's /proc samples, so each figure's definition sits in one
place and is unit-tested.

- *scrape-round duration*: one object's round, from the farm answering its first scrape to its last;
- *decision latency*: from the farm answering the last scrape of an object's round to the benchmark's
  watch delivering the next new VM of that object (the create request was accepted by then; this
  over-states the operator's part by the watch delivery, a few ms): the operator's own part, from
  having the numbers to asking for the VM. (The audit log cannot say: a create's line has no name.);
- *restart convergence*: from the new operator process starting to the last object's first round;
- *apiserver requests*: the operator's requests (its own user in the audit log), by verb and resource.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    at: float
    verb: str
    resource: str
    """`resource` or `resource/subresource`, with its API group: `virtualmachines.kubevirt.io`."""
    namespace: str
    name: str


@dataclass(frozen=True)
class ScrapeRound:
    namespace: str
    name: str
    first: float
    last: float
    scrapes: int


@dataclass(frozen=True)
class Sample:
    at: float
    cpu_seconds: float
    rss_bytes: int


def parse_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def read_audit(path: Path, user: str) -> list[Request]:
    """The requests of `user` in a JSON-lines audit log (one line per request: stage RequestReceived)."""
    requests = []
    with path.open() as lines:
        for line in lines:
            entry = json.loads(line)
            if (entry.get("user") or {}).get("username") != user:
                continue
            ref = entry.get("objectRef") or {}
            resource = str(ref.get("resource") or entry.get("requestURI", "?").split("?")[0])
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            if ref.get("apiGroup"):
                resource += "." + ref["apiGroup"]
            requests.append(
                Request(
                    at=parse_time(entry["requestReceivedTimestamp"]),
                    verb=str(entry.get("verb") or ""),
                    resource=resource,
                    namespace=str(ref.get("namespace") or ""),
                    name=str(ref.get("name") or ""),
                )
            )
    return requests


def read_rounds(path: Path) -> list[ScrapeRound]:
    rounds = []
    with path.open() as lines:
        for line in lines:
            r = json.loads(line)
            rounds.append(ScrapeRound(r["namespace"], r["name"], r["first"], r["last"], int(r["scrapes"])))
    return sorted(rounds, key=lambda r: r.first)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0–1) by the nearest-rank method; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def requests_per_second(requests: Iterable[Request], start: float, end: float) -> dict[str, float]:
    """`"verb resource"` → requests per second in [start, end), the busiest first."""
    span = max(end - start, 1e-9)
    counts = Counter(f"{r.verb} {r.resource}" for r in requests if start <= r.at < end)
    return {key: round(n / span, 3) for key, n in counts.most_common()}


def decision_latencies(creates: Iterable[tuple[float, str, str]], rounds: Sequence[ScrapeRound]) -> list[float]:
    """For each new VM, (when it was seen, its namespace, its WebAppScaling): seconds since the end of the
    last round of that WebAppScaling that ended before it."""
    ends: dict[tuple[str, str], list[float]] = {}
    for r in rounds:
        ends.setdefault((r.namespace, r.name), []).append(r.last)
    for values in ends.values():
        values.sort()
    latencies = []
    for at, namespace, owner in creates:
        times = ends.get((namespace, owner), [])
        i = bisect.bisect_right(times, at)
        if i:
            latencies.append(at - times[i - 1])
    return latencies


def restart_convergence(
    rounds: Sequence[ScrapeRound], objects: Iterable[tuple[str, str]], started: float
) -> float | None:
    """Seconds from `started` to the moment every object has had a round that began after it; None when
    some object never had one."""
    first: dict[tuple[str, str], float] = {}
    for r in rounds:
        if r.first >= started:
            first.setdefault((r.namespace, r.name), r.last)
    wanted = list(objects)
    if any(o not in first for o in wanted):
        return None
    return max((first[o] for o in wanted), default=started) - started


def cpu_cores(samples: Sequence[Sample], start: float, end: float) -> tuple[float | None, float | None]:
    """(average, peak) cores between `start` and `end`: the average over the whole span, the peak over
    one sampling interval."""
    inside = [s for s in samples if start <= s.at <= end]
    if len(inside) < 2:
        return None, None
    average = (inside[-1].cpu_seconds - inside[0].cpu_seconds) / max(inside[-1].at - inside[0].at, 1e-9)
    peaks = [(b.cpu_seconds - a.cpu_seconds) / (b.at - a.at) for a, b in itertools.pairwise(inside) if b.at > a.at]
    return average, max(peaks, default=None)


def summary(values: Sequence[float]) -> dict[str, Any]:
    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "count": len(values),
        "p50": rounded(percentile(values, 0.5)),
        "p99": rounded(percentile(values, 0.99)),
        "max": rounded(max(values, default=None) if values else None),
    }
