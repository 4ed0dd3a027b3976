"""Moving averages of the session indicator over a window of timestamped samples.

Samples arrive every scrape interval but not exactly (a slow scrape, a restart), so both averages are
defined on timestamps, not on sample counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from webapp_scaler import model, webappscaling


def in_window(samples: Sequence[model.Sample], now: float, window_seconds: float) -> list[model.Sample]:
    """The samples taken in (now - window, now]; with a zero window, only the newest sample."""
    if not samples:
        return []
    if window_seconds <= 0:
        return [samples[-1]]
    cutoff = now - window_seconds
    return [s for s in samples if cutoff < s.at <= now]


def simple_moving_average(samples: Sequence[model.Sample], now: float, window_seconds: float) -> float | None:
    """The plain mean of the samples in the window: the method's moving average."""
    window = in_window(samples, now, window_seconds)
    if not window:
        return None
    return sum(s.sessions for s in window) / len(window)


def exponential_moving_average(samples: Sequence[model.Sample], now: float, window_seconds: float) -> float | None:
    """A time-weighted exponential average of the samples in the window.

    A sample of age `a` weighs exp(-3a / window): the newest sample counts about 20 times the oldest one
    in the window, so the average follows a change faster than the simple one but still ignores one-scrape
    spikes. Samples older than the window are ignored entirely, like the simple average's.
    """
    window = in_window(samples, now, window_seconds)
    if not window:
        return None
    if window_seconds <= 0:
        return window[-1].sessions
    tau = window_seconds / 3.0
    weights = [math.exp(-(now - s.at) / tau) for s in window]
    return sum(w * s.sessions for w, s in zip(weights, window, strict=True)) / sum(weights)


def moving_average(samples: Sequence[model.Sample], now: float, spec: webappscaling.MovingAverageSpec) -> float | None:
    if spec.kind == "Exponential":
        return exponential_moving_average(samples, now, spec.window_seconds)
    return simple_moving_average(samples, now, spec.window_seconds)
