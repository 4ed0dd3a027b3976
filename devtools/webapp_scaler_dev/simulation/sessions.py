"""The session model: how a trace becomes user sessions with a start and an end.

- A *visit* is a user's burst of requests; its length is exponential with mean `mean_visit_seconds`,
  truncated at `max_visit_seconds` (real sites log users out or users leave; the cap keeps the longest
  session finite). `visits="heavy"` draws it instead from a Lomax (Pareto II) law with the same mean and
  tail index `tail_index`: a few users stay for hours, longer than any drain timeout, which is what a
  session-keeping scale-in must then either wait for or cut.
- The server keeps a session alive `idle_timeout_seconds` after the user's last request (Tomcat's default
  is 30 minutes, ASP.NET's 20, PHP's 24): a session lives `visit + idle timeout`. So a VM that stops
  receiving new users empties only as its users' timeouts expire, never instantly.
- Requests become sessions in proportion: every visit makes on average the same number of requests, so
  new sessions per step ∝ requests per step. The factor is chosen so that the *expected* number of
  concurrent sessions at the trace's busiest moment is `peak_vms × capacity`.
- A `sessions` trace gives concurrent sessions directly: it is scaled the same way, and arrivals are
  derived step by step as what is needed on top of the expected survivors of earlier arrivals.
- Arrivals (`arrivals="random"`, the default): each trace step's new sessions are Poisson around the
  trace's count and fall at seeded random times inside the step, with a density over the step that is
  itself random (flat Dirichlet over its simulation steps). A per-minute or per-5-minute count says
  nothing about how users bunch inside it; spreading them evenly is the smoothest, most favourable
  reading, so it is kept only as `arrivals="even"` (a Poisson count per simulation step at the evenly
  spread rate). Each session's lifetime is drawn from the model. Everything comes from one seeded
  generator, so a seed fixes the whole stream, and every policy sees the same users.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from webapp_scaler_dev.simulation import trace as traces

VisitLaw = Literal["exponential", "heavy"]
ArrivalMode = Literal["random", "even"]
VISIT_LAWS: tuple[VisitLaw, ...] = ("exponential", "heavy")
ARRIVAL_MODES: tuple[ArrivalMode, ...] = ("random", "even")
HEAVY_MAX_VISIT_SECONDS = 6 * 3600.0  # the cap `--visits heavy` uses unless told otherwise


@dataclasses.dataclass(frozen=True)
class SessionModel:
    idle_timeout_seconds: float = 1200.0
    mean_visit_seconds: float = 300.0
    max_visit_seconds: float = 1800.0
    visits: VisitLaw = "exponential"
    tail_index: float = 1.5  # the Lomax shape of heavy visits: > 1 for a finite mean, < 2: infinite variance

    @property
    def max_lifetime_seconds(self) -> float:
        return self.max_visit_seconds + self.idle_timeout_seconds

    @property
    def lomax_scale(self) -> float:
        """The Lomax scale giving the (untruncated) mean `mean_visit_seconds`."""
        return self.mean_visit_seconds * (self.tail_index - 1.0)

    def visit_survival(self, seconds: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """P(visit > seconds), before the cap."""
        if self.visits == "heavy":
            return np.asarray((1.0 + seconds / self.lomax_scale) ** -self.tail_index, dtype=np.float64)
        return np.asarray(np.exp(-seconds / self.mean_visit_seconds), dtype=np.float64)

    def draw_visits(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        """`n` visit lengths in seconds, capped at `max_visit_seconds`."""
        if self.visits == "heavy":
            raw = rng.pareto(self.tail_index, n) * self.lomax_scale
        else:
            raw = rng.exponential(self.mean_visit_seconds, n)
        return np.asarray(np.minimum(raw, self.max_visit_seconds), dtype=np.float64)

    def draw_lifetimes(self, rng: np.random.Generator, n: int, step_seconds: float) -> npt.NDArray[np.int32]:
        """`n` session lifetimes (visit + idle timeout) in whole steps, at least one."""
        seconds = self.draw_visits(rng, n) + self.idle_timeout_seconds
        return np.maximum(1, np.ceil(seconds / step_seconds)).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class SessionStream:
    """New sessions per simulation step and how many steps each one lives (offsets, ≥ 1)."""

    step_seconds: float
    arrivals: npt.NDArray[np.int64]  # per step
    bounds: npt.NDArray[np.int64]  # sessions of step i are lifetimes[bounds[i]:bounds[i+1]]
    lifetimes: npt.NDArray[np.int32]  # in steps
    expected: npt.NDArray[np.float64]  # expected concurrent sessions per step
    scale: float  # new sessions per request (or sessions per trace session)

    @property
    def max_lifetime_steps(self) -> int:
        return int(self.lifetimes.max()) if len(self.lifetimes) else 1

    def concurrent(self) -> npt.NDArray[np.int64]:
        """The realized number of live sessions per step when nobody is dropped."""
        n = len(self.arrivals)
        delta = np.zeros(n + self.max_lifetime_steps + 1, dtype=np.int64)
        delta[:n] += self.arrivals
        ends = np.repeat(np.arange(n), self.arrivals) + self.lifetimes
        np.add.at(delta, ends, -1)
        return np.cumsum(delta)[:n]


def survival(model: SessionModel, step_seconds: float) -> npt.NDArray[np.float64]:
    """P(a session is still alive k steps after it started), k = 0, 1, ...; from the closed form of the
    truncated exponential visit plus the fixed idle timeout."""
    steps = math.ceil(model.max_lifetime_seconds / step_seconds) + 1
    age = np.arange(steps) * step_seconds
    visit_needed = np.clip(age - model.idle_timeout_seconds, 0.0, None)
    alive = model.visit_survival(visit_needed)
    alive[visit_needed >= model.max_visit_seconds] = 0.0
    return np.asarray(alive, dtype=np.float64)


def per_step_rate(trace: traces.Trace, step_seconds: float) -> npt.NDArray[np.float64]:
    """The trace's value spread evenly over the simulation steps of each trace step."""
    repeat = max(1, round(trace.step_seconds / step_seconds))
    return np.repeat(trace.values, repeat) / repeat


def _arrival_rates(trace: traces.Trace, model: SessionModel, step_seconds: float) -> npt.NDArray[np.float64]:
    """Unscaled new sessions per step: requests directly, or derived from a sessions trace."""
    if trace.kind == "requests":
        return per_step_rate(trace, step_seconds)
    repeat = max(1, round(trace.step_seconds / step_seconds))
    level = np.repeat(trace.values, repeat)
    alive = survival(model, step_seconds)
    rates = np.zeros(len(level))
    expected = np.zeros(len(level) + len(alive))
    for i, want in enumerate(level):
        rates[i] = max(0.0, want - expected[i])
        expected[i : i + len(alive)] += rates[i] * alive
    return rates


def build_stream(
    trace: traces.Trace,
    model: SessionModel,
    *,
    step_seconds: float,
    peak_sessions: float,
    seed: int,
    scale_from: traces.Trace | None = None,
    arrivals: ArrivalMode = "random",
) -> SessionStream:
    """The seeded session stream of `trace`, scaled so that the expected peak of `scale_from` (default:
    the trace itself, so a window keeps the full trace's scale) is `peak_sessions`."""
    alive = survival(model, step_seconds)
    reference = _arrival_rates(scale_from or trace, model, step_seconds)
    reference_peak = float(np.convolve(reference, alive)[: len(reference)].max())
    scale = peak_sessions / reference_peak if reference_peak > 0 else 0.0
    rates = _arrival_rates(trace, model, step_seconds) * scale
    expected = np.convolve(rates, alive)[: len(rates)]
    rng = np.random.default_rng(seed)
    if arrivals == "even":
        counts = rng.poisson(rates).astype(np.int64)
    else:
        counts = random_arrivals(rates, max(1, round(trace.step_seconds / step_seconds)), rng)
    total = int(counts.sum())
    lifetimes = model.draw_lifetimes(rng, total, step_seconds)
    arrivals_per_step = counts
    bounds = np.concatenate(([0], np.cumsum(arrivals_per_step))).astype(np.int64)
    return SessionStream(step_seconds, arrivals_per_step, bounds, lifetimes, expected, scale)


def random_arrivals(
    rates: npt.NDArray[np.float64], per_trace_step: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """New sessions per simulation step when each trace step's users fall at random times inside it.

    The count of a trace step (`per_trace_step` simulation steps) is Poisson with the step's total rate;
    the times are drawn from a density over the step that is flat-Dirichlet random, so some sub-steps get
    several times the mean. A partial last group is treated the same way."""
    n = len(rates)
    groups = math.ceil(n / per_trace_step)
    padded = np.zeros(groups * per_trace_step)
    padded[:n] = rates
    grid = padded.reshape(groups, per_trace_step)
    totals = rng.poisson(grid.sum(axis=1))
    if per_trace_step == 1:
        return np.asarray(totals[:n], dtype=np.int64)
    present = grid > 0  # a sub-step with no rate at all (past the trace's end) gets no one
    weights = rng.gamma(1.0, size=grid.shape) * present
    sums = weights.sum(axis=1, keepdims=True)
    pvals = np.divide(weights, sums, out=np.full_like(weights, 1.0 / per_trace_step), where=sums > 0)
    counts = rng.multinomial(totals, pvals)
    return np.asarray(counts.reshape(-1)[:n], dtype=np.int64)
