"""Seeded, per-object durations, so a run with the same seed and names repeats its timings."""

from __future__ import annotations

import random


def jittered(seconds: float, jitter: float, seed: int, *identity: str) -> float:
    """`seconds` spread by ±`jitter` (relative), the same for the same seed and object identity."""
    rng = random.Random(f"{seed}/{'/'.join(identity)}")
    return max(0.0, seconds * (1.0 + jitter * rng.uniform(-1.0, 1.0)))
