"""The CRD's defaults and the engine's defaults are the same numbers: a minimal WebAppScaling defaulted by
the apiserver parses to exactly what the engine assumes for a missing field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from webapp_scaler import model


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / "webappscaling.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def apply_defaults(schema: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """Structural defaulting as the apiserver does it: a missing field with a default gets it, then the
    defaulting continues inside every object that is present."""
    for name, child in (schema.get("properties") or {}).items():
        if name not in obj and "default" in child:
            obj[name] = copy.deepcopy(child["default"])
        if isinstance(obj.get(name), dict) and child.get("type") == "object":
            apply_defaults(child, obj[name])
    return obj


def test_crd_defaults_equal_model_defaults() -> None:
    defaulted = apply_defaults(spec_schema(), {"goldenImage": {"name": "g"}, "vmTemplate": {"spec": {"domain": {}}}})
    assert model.ScalingSpec.from_spec(defaulted) == model.ScalingSpec.from_spec({})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("sessions.targetPerVM", 81),
        ("sessions.movingAverage.windowSeconds", 121),
        ("scaleIn.drain.timeoutSeconds", 1801),
        ("replicas.max", 11),
    ],
    ids=lambda v: str(v),
)
def test_the_comparison_would_notice_a_different_default(path: str, value: int) -> None:
    schema = copy.deepcopy(spec_schema())
    node = schema
    for key in path.split("."):
        node = node["properties"][key]
    node["default"] = value
    defaulted = apply_defaults(schema, {"goldenImage": {"name": "g"}, "vmTemplate": {"spec": {"domain": {}}}})
    assert model.ScalingSpec.from_spec(defaulted) != model.ScalingSpec.from_spec({})
