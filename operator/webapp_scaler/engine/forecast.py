"""Holt's linear trend with damping, for provisioning ahead of the load by the boot time.

A VM asked for now serves users only after its clone and boot (about 1.5 minutes); by then a rising
load has risen further. The level follows the raw session total (not the moving average, which lags),
the trend is per second, and damping (phi < 1) makes the projected increase taper off, so one steep
minute does not turn into a wild extrapolation.
"""

from __future__ import annotations

import math

from webapp_scaler import model, webappscaling


def update_trend(
    trend: model.Trend | None, *, value: float, at: float, spec: webappscaling.PredictionSpec, interval: float
) -> model.Trend:
    """One Holt update. Smoothing factors are per `interval` and adjusted when samples come late."""
    if trend is None or not math.isfinite(trend.level) or not math.isfinite(trend.slope):
        return model.Trend(level=value, slope=0.0, at=at)
    dt = at - trend.at
    if dt <= 0:
        return trend
    steps = dt / interval
    alpha = 1.0 - (1.0 - spec.level_smoothing) ** steps
    beta = 1.0 - (1.0 - spec.trend_smoothing) ** steps
    predicted = trend.level + spec.damping * trend.slope * dt
    level = alpha * value + (1.0 - alpha) * predicted
    slope = beta * (level - trend.level) / dt + (1.0 - beta) * spec.damping * trend.slope
    return model.Trend(level=level, slope=slope, at=at)


def damped_horizon(horizon_seconds: float, *, damping: float, interval: float) -> float:
    """Seconds of trend that a damped forecast adds over the horizon: interval * sum(phi^i for i in 1..h)."""
    steps = horizon_seconds / interval
    if damping >= 1.0:
        return horizon_seconds
    return float(interval * damping * (1.0 - damping**steps) / (1.0 - damping))


def forecast(
    trend: model.Trend, *, horizon_seconds: float, spec: webappscaling.PredictionSpec, interval: float
) -> float:
    """The session total expected `horizon_seconds` after the trend's last update (never negative)."""
    ahead = damped_horizon(horizon_seconds, damping=spec.damping, interval=interval)
    return max(0.0, trend.level + trend.slope * ahead)
