"""The lower bound on VM-minutes: every minute exactly ceil(sessions / capacity) VMs, ready the moment
they are needed, removed the moment they are not, sessions moving freely between them. No real policy
can do this (VMs boot, sessions are sticky); it tells how close to the floor the others get."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def needed_per_minute(concurrent: npt.NDArray[np.int64], steps_per_minute: int, capacity: int) -> npt.NDArray[np.int64]:
    minutes = len(concurrent) // steps_per_minute
    peak = concurrent[: minutes * steps_per_minute].reshape(minutes, steps_per_minute).max(axis=1)
    return np.asarray(np.maximum(1, np.ceil(peak / capacity)), dtype=np.int64)
