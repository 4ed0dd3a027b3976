"""The spec parser: defaults from one place, camelCase in, clear errors naming the field."""

from __future__ import annotations

import re
from typing import Any

import pytest

from webapp_scaler import model


def test_empty_spec_gives_the_documented_defaults() -> None:
    spec = model.ScalingSpec.from_spec({})
    assert spec == model.ScalingSpec()
    assert spec.sessions.target_per_vm == 80
    assert spec.sessions.moving_average == model.MovingAverageSpec(kind="Simple", window_seconds=120)
    assert spec.behavior.scale_down.stabilization_window_seconds == 60  # HPA: 300, see model.py
    assert spec.behavior.scale_up == model.HPA_SCALE_UP
    assert spec.warm_pool.size == 2
    assert spec.behavior.scale_up.policies == (
        model.ScalingPolicy("Percent", 100, 15),
        model.ScalingPolicy("VMs", 4, 15),
    )
    assert spec.scale_in == model.ScaleInSpec(order="FewestSessions", drain=model.DrainSpec(True, 3600))


def test_camel_case_fields_are_read() -> None:
    spec = model.ScalingSpec.from_spec(
        {
            "paused": True,
            "mode": "External",
            "replicas": {"min": 2, "max": 30, "desired": 7},
            "sessions": {
                "targetPerVM": 50,
                "agent": {"port": 8080, "path": "/m", "metric": "s", "drainPath": "/d"},
                "scrapeIntervalSeconds": 10,
                "scrapeTimeoutSeconds": 3,
                "movingAverage": {"kind": "Exponential", "windowSeconds": 300},
            },
            "behavior": {
                "tolerance": 0.05,
                "scaleUp": {
                    "stabilizationWindowSeconds": 30,
                    "selectPolicy": "Min",
                    "policies": [{"type": "VMs", "value": 2, "periodSeconds": 60}],
                },
                "scaleDown": {"selectPolicy": "Disabled", "policies": []},
            },
            "scaleIn": {"order": "Oldest", "drain": {"enabled": False, "timeoutSeconds": 60}},
            "warmPool": {"size": 3},
            "prediction": {"enabled": False, "horizonSeconds": 120, "damping": 0.8},
            "goldenImage": {"name": "ignored-here"},
        }
    )
    assert spec.paused and spec.mode == "External"
    assert spec.replicas == model.ReplicasSpec(min=2, max=30, desired=7)
    assert spec.sessions.target_per_vm == 50.0
    assert spec.sessions.agent == model.AgentSpec(8080, "/m", "s", "/d")
    assert spec.sessions.moving_average == model.MovingAverageSpec("Exponential", 300)
    assert spec.behavior.scale_up == model.ScalingRules(30, "Min", (model.ScalingPolicy("VMs", 2, 60),))
    assert spec.behavior.scale_down.select_policy == "Disabled"
    assert spec.scale_in == model.ScaleInSpec("Oldest", model.DrainSpec(False, 60))
    assert spec.warm_pool.size == 3
    assert spec.prediction == model.PredictionSpec(enabled=False, horizon_seconds=120, damping=0.8)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"sessions": {"targetPerVM": 0}}, "spec.sessions.targetPerVM", id="zero-target"),
        pytest.param({"sessions": {"targetPerVM": float("nan")}}, "spec.sessions.targetPerVM", id="nan-target"),
        pytest.param({"replicas": {"min": 5, "max": 2}}, "spec.replicas.max", id="max-below-min"),
        pytest.param({"replicas": {"min": -1}}, "spec.replicas.min", id="negative-min"),
        pytest.param({"replicas": {"max": "ten"}}, "spec.replicas.max", id="string-max"),
        pytest.param({"behavior": {"tolerance": 1.5}}, "spec.behavior.tolerance", id="tolerance-above-1"),
        pytest.param(
            {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1}]}}},
            "spec.behavior.scaleUp.policies[0].type",
            id="unknown-policy-type",
        ),
        pytest.param(
            {"behavior": {"scaleDown": {"policies": [{"type": "VMs", "value": 0, "periodSeconds": 15}]}}},
            "spec.behavior.scaleDown.policies[0].value",
            id="zero-policy-value",
        ),
        pytest.param(
            {"behavior": {"scaleDown": {"policies": []}}}, "spec.behavior.scaleDown.policies", id="no-policies"
        ),
        pytest.param(
            {"sessions": {"movingAverage": {"kind": "Weighted"}}},
            "spec.sessions.movingAverage.kind",
            id="unknown-average",
        ),
        pytest.param(
            {"sessions": {"scrapeIntervalSeconds": 5, "scrapeTimeoutSeconds": 10}},
            "spec.sessions.scrapeTimeoutSeconds",
            id="timeout-above-interval",
        ),
        pytest.param({"warmPool": {"size": -2}}, "spec.warmPool.size", id="negative-warm-pool"),
        pytest.param({"paused": "yes"}, "spec.paused", id="string-paused"),
        pytest.param({"sessions": {"agent": {"port": 70000}}}, "spec.sessions.agent.port", id="port-range"),
        pytest.param({"prediction": {"damping": 0}}, "spec.prediction.damping", id="zero-damping"),
        pytest.param({"scaleIn": []}, "spec.scaleIn", id="list-for-object"),
    ],
)
def test_impossible_values_name_their_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(field) + ": "):
        model.ScalingSpec.from_spec(spec)
