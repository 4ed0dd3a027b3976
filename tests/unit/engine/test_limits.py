"""HPA's rate policies (Percent/VMs per period, selectPolicy Max/Min/Disabled) and min/max, with the
reason HPA reports for the limit that bound."""

from __future__ import annotations

import pytest

from webapp_scaler import model, webappscaling
from webapp_scaler.constants import Reason
from webapp_scaler.engine import limits, normalize

NOW = 5_000.0
DEFAULT = webappscaling.HPA_BEHAVIOR


def rules(
    select: webappscaling.SelectPolicy, *policies: tuple[str, int, int], window: int = 0
) -> webappscaling.ScalingRules:
    return webappscaling.ScalingRules(
        window, select, tuple(webappscaling.ScalingPolicy(t, v, p) for t, v, p in policies)
    )  # type: ignore[arg-type]


def events(*pairs: tuple[float, int]) -> tuple[model.ScaleEvent, ...]:
    return tuple(model.ScaleEvent(NOW - age, change) for age, change in pairs)


@pytest.mark.parametrize(
    ("desired", "current", "up_rules", "up_events", "expected", "reason"),
    [
        pytest.param(20, 3, DEFAULT.scale_up, (), 7, Reason.SCALE_UP_LIMIT, id="max-of-100pct-and-4vms"),
        pytest.param(50, 10, DEFAULT.scale_up, (), 20, Reason.SCALE_UP_LIMIT, id="percent-wins-when-large"),
        pytest.param(
            50,
            10,
            rules("Min", ("Percent", 100, 15), ("VMs", 4, 15)),
            (),
            14,
            Reason.SCALE_UP_LIMIT,
            id="select-min",
        ),
        pytest.param(20, 7, DEFAULT.scale_up, events((10, 4)), 7, Reason.SCALE_UP_LIMIT, id="period-already-used"),
        pytest.param(20, 7, DEFAULT.scale_up, events((15, 4)), 14, Reason.SCALE_UP_LIMIT, id="event-at-cutoff-expired"),
        pytest.param(20, 5, rules("Disabled", ("VMs", 4, 15)), (), 5, Reason.SCALE_UP_LIMIT, id="disabled"),
        pytest.param(
            2, 1, rules("Max", ("Percent", 10, 60)), (), 2, Reason.DESIRED_WITHIN_RANGE, id="percent-rounds-up"
        ),
        pytest.param(40, 20, DEFAULT.scale_up, (), 30, Reason.TOO_MANY_REPLICAS, id="max-clamps"),
        pytest.param(6, 4, DEFAULT.scale_up, (), 6, Reason.DESIRED_WITHIN_RANGE, id="within-range"),
    ],
)
def test_scale_up(
    desired: int,
    current: int,
    up_rules: webappscaling.ScalingRules,
    up_events: tuple[model.ScaleEvent, ...],
    expected: int,
    reason: Reason,
) -> None:
    behavior = webappscaling.BehaviorSpec(scale_up=up_rules, scale_down=webappscaling.HPA_SCALE_DOWN)
    result = limits.limit_rate(
        desired,
        current,
        now=NOW,
        replicas=webappscaling.ReplicasSpec(min=1, max=30),
        behavior=behavior,
        up_events=up_events,
        down_events=(),
    )
    assert (result.replicas, result.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("desired", "current", "down_rules", "down_events", "expected", "reason"),
    [
        pytest.param(1, 8, DEFAULT.scale_down, (), 2, Reason.TOO_FEW_REPLICAS, id="100pct-then-min"),
        pytest.param(1, 5, rules("Max", ("VMs", 1, 60)), (), 4, Reason.SCALE_DOWN_LIMIT, id="one-vm-a-minute"),
        pytest.param(1, 4, rules("Max", ("VMs", 1, 60)), events((30, 1)), 4, Reason.SCALE_DOWN_LIMIT, id="period-used"),
        pytest.param(
            2,
            10,
            rules("Max", ("Percent", 50, 60), ("VMs", 2, 60)),
            (),
            5,
            Reason.SCALE_DOWN_LIMIT,
            id="max-picks-biggest-drop",
        ),
        pytest.param(
            2,
            10,
            rules("Min", ("Percent", 50, 60), ("VMs", 2, 60)),
            (),
            8,
            Reason.SCALE_DOWN_LIMIT,
            id="min-picks-smallest-drop",
        ),
        pytest.param(
            2, 5, rules("Max", ("Percent", 50, 60)), (), 2, Reason.DESIRED_WITHIN_RANGE, id="percent-truncates"
        ),
        pytest.param(2, 6, rules("Disabled"), (), 6, Reason.SCALE_DOWN_LIMIT, id="disabled"),
    ],
)
def test_scale_down(
    desired: int,
    current: int,
    down_rules: webappscaling.ScalingRules,
    down_events: tuple[model.ScaleEvent, ...],
    expected: int,
    reason: Reason,
) -> None:
    behavior = webappscaling.BehaviorSpec(scale_down=down_rules)
    result = limits.limit_rate(
        desired,
        current,
        now=NOW,
        replicas=webappscaling.ReplicasSpec(min=2, max=20),
        behavior=behavior,
        up_events=(),
        down_events=down_events,
    )
    assert (result.replicas, result.reason) == (expected, reason)


def test_scale_events_keep_only_the_longest_period() -> None:
    up, down = limits.record_scale_event(
        events((100, 3)), events((10, 2)), now=NOW, previous=5, new=8, behavior=DEFAULT
    )
    assert up == (model.ScaleEvent(NOW, 3),)
    assert down == events((10, 2))


@pytest.mark.parametrize(
    ("current", "proposal", "expected", "reason"),
    [
        pytest.param(12, 12, 10, Reason.TOO_MANY_REPLICAS, id="above-max-before-metrics"),
        pytest.param(1, 1, 2, Reason.TOO_FEW_REPLICAS, id="below-min-before-metrics"),
        pytest.param(6, 3, 6, Reason.SCALE_DOWN_STABILIZED, id="down-stabilized"),
        pytest.param(3, 9, 7, Reason.SCALE_UP_LIMIT, id="up-limited"),
        pytest.param(5, 5, 5, Reason.DESIRED_WITHIN_RANGE, id="steady"),
    ],
)
def test_the_whole_chain(current: int, proposal: int, expected: int, reason: Reason) -> None:
    history = (model.Recommendation(NOW - 60, 6),)
    result = normalize.normalize(
        proposal,
        current,
        now=NOW,
        replicas=webappscaling.ReplicasSpec(min=2, max=10),
        behavior=DEFAULT,
        recommendations=history,
        up_events=(),
        down_events=(),
    )
    assert (result.replicas, result.reason) == (expected, reason)
