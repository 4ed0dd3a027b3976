"""Seeded synthetic traces: shapes nobody tuned the engine on, in the same form as a CSV trace.

Two shapes, both `requests` per minute, both drawn from one seeded generator (a seed fixes the trace):

- `flash`: a quiet site with a mild daily swing that is hit by flash crowds. Each flash crowd multiplies
  the request rate by 20–50× within 1–3 minutes (a linear rise), holds that level for 5–30 minutes, then
  decays back exponentially over 10–40 minutes. Four flash crowds in 25 hours, at random times at least
  three hours apart, after the first hour (the simulator's unscored warm-up).
- `diurnal`: three days of a working-hours pattern (a morning and an afternoon peak with a lunch dip, a
  quiet night) whose daily peak varies ±25 % from day to day, with correlated noise (an AR(1) factor,
  ±15 %) and Poisson counting noise on top, at a different absolute scale from the real traces.

The simulator scales every trace so that its expected peak needs `peak_vms` VMs, so the absolute counts
only matter through the Poisson noise; `diurnal` is meant to be run at another `--peak-vms` too.
`trace_csv` writes a trace as a CSV that `trace.load_trace` reads back.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from webapp_scaler_dev.simulation import trace as traces

Shape = Literal["flash", "diurnal"]
SHAPES: tuple[Shape, ...] = ("flash", "diurnal")
START = datetime.datetime(2024, 3, 4, tzinfo=datetime.UTC).timestamp()  # a Monday, 00:00 UTC
STEP_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class FlashCrowd:
    """One flash crowd, in minutes from the trace's start."""

    at: int  # the rise begins
    rise_minutes: float  # to the full multiple
    factor: float  # the multiple of the rate just before it
    hold_minutes: float
    decay_minutes: float  # time constant of the fall back


@dataclasses.dataclass(frozen=True)
class FlashParams:
    hours: float = 25.0
    base_requests: float = 200.0  # per minute, the daily mean before any crowd
    daily_swing: float = 0.3  # ± share of the base over a day
    crowds: int = 4
    min_gap_hours: float = 3.0
    first_after_minutes: int = 60  # not inside the warm-up
    factor: tuple[float, float] = (20.0, 50.0)
    rise_minutes: tuple[float, float] = (1.0, 3.0)
    hold_minutes: tuple[float, float] = (5.0, 30.0)
    decay_minutes: tuple[float, float] = (10.0, 40.0)


@dataclasses.dataclass(frozen=True)
class DiurnalParams:
    days: int = 3
    peak_requests: float = 3000.0  # per minute, a typical day's peak
    night_share: float = 0.05  # the night's level as a share of the peak
    day_to_day: float = 0.25  # ± share of a day's peak
    noise: float = 0.15  # standard deviation of the correlated noise factor
    noise_minutes: float = 20.0  # its correlation time


def flash_crowds(rng: np.random.Generator, p: FlashParams) -> list[FlashCrowd]:
    """`p.crowds` flash crowds at random minutes, at least `p.min_gap_hours` apart (by rejection)."""
    minutes = int(p.hours * 60)
    gap = p.min_gap_hours * 60
    latest = minutes - p.hold_minutes[1] - p.rise_minutes[1] - 2 * p.decay_minutes[1]
    for _ in range(1000):
        starts = np.sort(rng.integers(p.first_after_minutes, int(latest), size=p.crowds))
        if p.crowds < 2 or np.diff(starts).min() >= gap:
            break
    else:
        raise ValueError("flash crowds do not fit: fewer crowds, a smaller gap or a longer trace")
    return [
        FlashCrowd(
            at=int(at),
            rise_minutes=float(rng.uniform(*p.rise_minutes)),
            factor=float(rng.uniform(*p.factor)),
            hold_minutes=float(rng.uniform(*p.hold_minutes)),
            decay_minutes=float(rng.uniform(*p.decay_minutes)),
        )
        for at in starts
    ]


def crowd_multiplier(crowd: FlashCrowd, minutes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The factor one crowd puts on the rate at each minute: 1 before, a linear rise to `factor`, the
    hold, then an exponential decay back to 1."""
    since = minutes - crowd.at
    rise_end = crowd.rise_minutes
    hold_end = rise_end + crowd.hold_minutes
    extra = crowd.factor - 1.0
    out = np.zeros_like(minutes)
    rising = (since >= 0) & (since < rise_end)
    out[rising] = extra * since[rising] / rise_end
    out[(since >= rise_end) & (since < hold_end)] = extra
    decaying = since >= hold_end
    out[decaying] = extra * np.exp(-(since[decaying] - hold_end) / crowd.decay_minutes)
    return np.asarray(1.0 + out, dtype=np.float64)


def flash(seed: int, p: FlashParams | None = None) -> tuple[traces.Trace, list[FlashCrowd]]:
    """The `flash` trace of `seed` and the crowds in it."""
    p = p or FlashParams()
    rng = np.random.default_rng([seed, 0xF1A5])
    minutes = np.arange(int(p.hours * 60), dtype=np.float64)
    phase = rng.uniform(0, 2 * math.pi)
    rate = p.base_requests * (1.0 + p.daily_swing * np.sin(2 * math.pi * minutes / 1440 + phase))
    crowds = flash_crowds(rng, p)
    for crowd in crowds:
        rate = rate * crowd_multiplier(crowd, minutes)
    values = rng.poisson(rate).astype(np.float64)
    return _trace(f"synthetic-flash-s{seed}", values), crowds


def _ar1(rng: np.random.Generator, n: int, sigma: float, correlation_minutes: float) -> npt.NDArray[np.float64]:
    """A stationary AR(1) series with standard deviation `sigma` and the given correlation time."""
    a = math.exp(-1.0 / correlation_minutes)
    shocks = rng.normal(0.0, sigma * math.sqrt(1 - a * a), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = a * out[i - 1] + shocks[i]
    return out


def working_day(hour_of_day: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A working day's shape, 0..1: peaks about 10:30 and 15:00, a lunch dip, a quiet night."""
    morning = np.exp(-(((hour_of_day - 10.5) / 1.8) ** 2))
    afternoon = 0.85 * np.exp(-(((hour_of_day - 15.0) / 2.0) ** 2))
    evening = 0.25 * np.exp(-(((hour_of_day - 20.0) / 1.5) ** 2))
    return np.asarray(np.clip(morning + afternoon + evening, 0.0, 1.0), dtype=np.float64)


def diurnal(seed: int, p: DiurnalParams | None = None) -> traces.Trace:
    """The `diurnal` trace of `seed`."""
    p = p or DiurnalParams()
    rng = np.random.default_rng([seed, 0xD1A1])
    minutes = np.arange(p.days * 1440, dtype=np.float64)
    hour = (minutes % 1440) / 60
    day_peak = p.peak_requests * (1.0 + rng.uniform(-p.day_to_day, p.day_to_day, p.days))
    level = p.night_share + (1.0 - p.night_share) * working_day(hour)
    rate = np.repeat(day_peak, 1440) * level
    rate = rate * np.clip(1.0 + _ar1(rng, len(minutes), p.noise, p.noise_minutes), 0.2, None)
    values = rng.poisson(rate).astype(np.float64)
    return _trace(f"synthetic-diurnal-s{seed}", values)


def _trace(name: str, values: npt.NDArray[np.float64]) -> traces.Trace:
    return traces.Trace(name, "requests", START, STEP_SECONDS, values, gaps=0, skipped_lines=0)


def generate(shape: Shape, seed: int) -> traces.Trace:
    """The synthetic trace `shape` drawn with `seed`."""
    if shape == "flash":
        return flash(seed)[0]
    return diurnal(seed)


def trace_csv(trace: traces.Trace) -> str:
    """The trace as a CSV in the form of the shipped traces (`timestamp,requests`, ISO-8601 UTC)."""
    lines = [f"timestamp,{trace.kind}"]
    for i, value in enumerate(trace.values):
        lines.append(f"{trace.time_of(i).strftime('%Y-%m-%dT%H:%M:%SZ')},{value:g}")
    return "\n".join(lines) + "\n"
