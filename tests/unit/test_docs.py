"""Docs that are generated from the code must match it."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def test_api_reference_is_generated_from_the_crd() -> None:
    spec = importlib.util.spec_from_file_location("gen_api_reference", REPO / "hack" / "gen_api_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (REPO / "docs" / "api-reference.md").read_text() == module.render(), (
        "docs/api-reference.md is stale: run python hack/gen_api_reference.py"
    )
