"""HPA's stabilization windows: scale-down takes the highest recommendation in its window, scale-up the
lowest; a record exactly at the cutoff is outside (HPA's `After(cutoff)`)."""

from __future__ import annotations

import pytest

from webapp_scaler import model
from webapp_scaler.constants import Reason
from webapp_scaler.engine import stabilize

NOW = 10_000.0


def recs(*pairs: tuple[float, int]) -> tuple[model.Recommendation, ...]:
    return tuple(model.Recommendation(NOW - age, replicas) for age, replicas in pairs)


@pytest.mark.parametrize(
    ("history", "desired", "current", "up", "down", "expected", "reason"),
    [
        pytest.param((), 4, 8, 0, 300, 4, Reason.SCALE_DOWN_STABILIZED, id="empty-history-follows"),
        pytest.param(recs((200, 8), (100, 6)), 4, 8, 0, 300, 8, Reason.SCALE_DOWN_STABILIZED, id="down-holds-max"),
        pytest.param(recs((200, 6), (100, 5)), 4, 8, 0, 300, 6, Reason.SCALE_DOWN_STABILIZED, id="down-to-window-max"),
        pytest.param(recs((300, 8)), 4, 8, 0, 300, 4, Reason.SCALE_DOWN_STABILIZED, id="cutoff-excluded"),
        pytest.param(recs((299, 8)), 4, 8, 0, 300, 8, Reason.SCALE_DOWN_STABILIZED, id="inside-window"),
        pytest.param(recs((30, 5)), 9, 4, 60, 300, 5, Reason.SCALE_UP_STABILIZED, id="up-holds-min"),
        pytest.param(recs((30, 3)), 9, 4, 60, 300, 4, Reason.SCALE_UP_STABILIZED, id="up-never-below-current"),
        pytest.param(recs((30, 5)), 9, 4, 0, 300, 9, Reason.SCALE_UP_STABILIZED, id="zero-up-window"),
    ],
)
def test_windows(
    history: tuple[model.Recommendation, ...],
    desired: int,
    current: int,
    up: int,
    down: int,
    expected: int,
    reason: Reason,
) -> None:
    result = stabilize.stabilize(
        history, now=NOW, desired=desired, current=current, up_window_seconds=up, down_window_seconds=down
    )
    assert (result.replicas, result.reason) == (expected, reason)
    assert result.recommendations[-1] == model.Recommendation(NOW, desired)


def test_history_forgets_what_no_window_can_see() -> None:
    result = stabilize.stabilize(
        recs((400, 9), (100, 7)), now=NOW, desired=5, current=7, up_window_seconds=0, down_window_seconds=300
    )
    assert [r.replicas for r in result.recommendations] == [7, 5]
