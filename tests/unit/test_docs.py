"""Docs that are generated from the code must match it."""

from __future__ import annotations

from tests.conftest import REPO
from webapp_scaler_dev.generate import api_reference


def test_api_reference_is_generated_from_the_crd() -> None:
    assert (REPO / "docs" / "api-reference.md").read_text() == api_reference.render(), (
        "docs/api-reference.md is stale: run python -m webapp_scaler_dev.generate.api_reference"
    )
