"""The burst response: when the sessions rise faster than the forecast said they would.

Holt's damped trend (`forecast`) follows a load that changes over minutes. A flash crowd multiplies the
arrivals 20–50× within a few minutes: the trend needs several rounds to learn the new slope, and by then
the VMs it asks for are a clone and boot (about 90 s) away while the old VMs fill past their capacity
with sticky sessions that stay there for as long as the users do. So each round the engine compares the
session total it observes with Holt's own one-round prediction for it (made before the new sample is
taken in). When the observed total exceeds that prediction by a clear margin, the rise outpaces the
forecast, and the engine answers at once:

- the demand becomes the larger of the usual demand and the observed rise of the last minute, per
  second, carried on undamped over the lead time of a clone plus one round: the crowd is still arriving
  when the new VMs come up;
- a burst the fleet already covers asks for nothing more; one that needs more VMs also starts every
  warm VM (counted in the new desired count) and skips the tolerance band; the stabilization window,
  the rate policies and min/max still apply, so the engine clones at the highest rate the policies
  allow and never beyond it;
- such a burst holds the response for a clone's lead time after the last round that saw it: meanwhile
  the count does not fall (the VMs it ordered are still booting, and a trend that has caught up would
  otherwise give them back before they serve) and the demand keeps following the observed rise.

The margin: the rise must exceed the prediction by `RELATIVE_MARGIN` of it and by `ABSOLUTE_MARGIN` VMs'
worth of the target, so that ordinary noise (random arrivals inside a trace step, a busy second at
night) does not count as a burst. Smaller margins catch a flash crowd a round earlier but also fire on
the bunching of random arrivals inside a 5-minute trace step, and every VM a false burst adds takes new
sessions and then drains for the length of a session (docs/benchmarks.md has the measurements). Both
are defaults of the engine, not settings: it responds on any trace the same way. The response is part
of prediction and is off with `prediction.enabled: false`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from webapp_scaler import model, webappscaling

RELATIVE_MARGIN = 0.25  # of the predicted total
ABSOLUTE_MARGIN = 0.5  # VMs' worth of the target
RISE_SECONDS = 60.0  # the span the rise is measured over


@dataclasses.dataclass(frozen=True, slots=True)
class Burst:
    """A burst response this round: why (`detected` this round, or held), the observed and predicted
    totals, the rise per second and the demand it implies."""

    detected: bool
    observed: float
    predicted: float
    rise_per_second: float
    demand: float
    until: float  # the response holds until then


def one_round_prediction(trend: model.Trend, *, at: float, spec: webappscaling.PredictionSpec) -> float:
    """What Holt's trend (before taking the sample at `at` in) predicts for `at`: the same prediction
    `forecast.update_trend` corrects."""
    return trend.level + spec.damping * trend.slope * max(0.0, at - trend.at)


def margin(predicted: float, target_per_vm: float) -> float:
    """How far above the prediction the observed total must be to count as a burst."""
    return max(RELATIVE_MARGIN * max(predicted, 0.0), ABSOLUTE_MARGIN * target_per_vm)


def outpaces(
    previous: model.Trend | None,
    *,
    sessions: float,
    now: float,
    target_per_vm: float,
    spec: webappscaling.PredictionSpec,
) -> float | None:
    """Holt's prediction for `now` when `sessions` exceeds it by more than the margin, else None.
    `previous`: the trend before this round's sample."""
    if previous is None or not (math.isfinite(previous.level) and math.isfinite(previous.slope)):
        return None
    if not math.isfinite(sessions) or now <= previous.at:
        return None
    predicted = one_round_prediction(previous, at=now, spec=spec)
    return predicted if sessions - predicted > margin(predicted, target_per_vm) else None


def rise(samples: Sequence[model.Sample], *, sessions: float, now: float) -> float:
    """The observed rise per second up to `now` (never negative), from the oldest sample of the last
    `RISE_SECONDS` (or the newest earlier sample when none is that recent)."""
    earlier = [s for s in samples if s.at < now]
    if not earlier:
        return 0.0
    first = next((s for s in earlier if s.at >= now - RISE_SECONDS), earlier[-1])
    return max(0.0, (sessions - first.sessions) / (now - first.at))


def respond(
    previous: model.Trend | None,
    samples: Sequence[model.Sample],
    *,
    held_until: float | None,
    sessions: float,
    now: float,
    lead_seconds: float,
    interval: float,
    target_per_vm: float,
    spec: webappscaling.PredictionSpec,
) -> Burst | None:
    """This round's burst response, or None. `previous` and `samples`: the trend and the samples before
    this round's sample; `held_until`: the hold of an earlier burst (the engine's memory)."""
    predicted = outpaces(previous, sessions=sessions, now=now, target_per_vm=target_per_vm, spec=spec)
    detected = predicted is not None
    if not detected and (held_until is None or now >= held_until or not math.isfinite(sessions)):
        return None
    up = rise(samples, sessions=sessions, now=now)
    return Burst(
        detected=detected,
        observed=sessions,
        predicted=sessions if predicted is None else predicted,
        rise_per_second=up,
        demand=sessions + up * (lead_seconds + interval),
        until=now + lead_seconds if detected else held_until or now,
    )
