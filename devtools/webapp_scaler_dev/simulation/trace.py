"""Traffic traces: CSV files of `timestamp,requests` or `timestamp,sessions`.

Timestamps are ISO-8601 (with or without offset; `Z` allowed) or epoch seconds. The step is the most
common spacing of the rows (1 or 5 minutes in our traces; any whole number of seconds works). Rows that cannot
be parsed (bad timestamp, non-numeric, negative, NaN or infinite value) are skipped and become gaps;
missing steps are filled by linear interpolation between the neighbouring rows, because a missing
sample in a monitoring export means "not recorded", not "no traffic" (a recorded 0 stays 0). Rows off
the step grid are snapped to the nearest step; a duplicate step keeps the last row.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import itertools
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

TraceKind = Literal["requests", "sessions"]


@dataclasses.dataclass(frozen=True)
class Trace:
    name: str
    kind: TraceKind
    start: float  # epoch seconds of the first step
    step_seconds: int
    values: npt.NDArray[np.float64]  # one value per step, gaps filled
    gaps: int  # steps that were missing or unparseable and got interpolated
    skipped_lines: int

    @property
    def duration_seconds(self) -> int:
        return self.step_seconds * len(self.values)

    def time_of(self, index: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.start + index * self.step_seconds, tz=datetime.UTC)


def load_trace(path: Path) -> Trace:
    with path.open(encoding="utf-8") as f:
        return parse_trace(f, name=path.stem)


def parse_timestamp(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _value(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_trace(lines: Iterable[str], *, name: str = "trace") -> Trace:
    rows = iter(lines)
    header = [h.strip().lower() for h in next(rows, "").split(",")]
    if len(header) < 2 or header[0] != "timestamp" or header[1] not in ("requests", "sessions"):
        raise ValueError(f"{name}: the header must be 'timestamp,requests' or 'timestamp,sessions', got {header}")
    kind: TraceKind = "requests" if header[1] == "requests" else "sessions"
    points: list[tuple[float, float]] = []
    skipped = 0
    for line in rows:
        if not line.strip():
            continue
        fields = line.split(",")
        value = _value(fields[1]) if len(fields) >= 2 else None
        try:
            at = parse_timestamp(fields[0])
        except ValueError:
            value = None
        if value is None:
            skipped += 1
            continue
        points.append((at, value))
    if len(points) < 2:
        raise ValueError(f"{name}: needs at least two valid rows, found {len(points)}")
    points.sort()
    diffs = [b[0] - a[0] for a, b in itertools.pairwise(points) if b[0] > a[0]]
    counts = collections.Counter(round(d) for d in diffs)
    step = min(counts, key=lambda d: (-counts[d], d))  # the most common spacing; ties: the finest
    if step <= 0:
        raise ValueError(f"{name}: cannot infer a step from the timestamps")
    start = points[0][0]
    count = round((points[-1][0] - start) / step) + 1
    values = np.full(count, np.nan)
    for at, value in points:
        values[round((at - start) / step)] = value
    known = ~np.isnan(values)
    gaps = int(count - known.sum())
    if gaps:
        index = np.arange(count)
        values = np.interp(index, index[known], values[known])
    return Trace(name, kind, start, step, values, gaps, skipped)


def window(trace: Trace, *, start: float | None, hours: float | None) -> Trace:
    """A slice of the trace: `hours` from `start` (epoch seconds), or the whole trace."""
    first = 0 if start is None else max(0, math.floor((start - trace.start) / trace.step_seconds))
    last = len(trace.values) if hours is None else first + math.ceil(hours * 3600 / trace.step_seconds)
    last = min(last, len(trace.values))
    if last - first < 2:
        raise ValueError(f"{trace.name}: the window holds fewer than two steps")
    return dataclasses.replace(
        trace, start=trace.start + first * trace.step_seconds, values=trace.values[first:last].copy()
    )


def peak_time(trace: Trace) -> float:
    return trace.start + int(np.argmax(trace.values)) * trace.step_seconds
