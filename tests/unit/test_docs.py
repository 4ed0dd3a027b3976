"""Docs that are generated from the code must match it."""

from __future__ import annotations

import re

from tests.conftest import REPO
from webapp_scaler_dev.generate import api_reference


def test_api_reference_is_generated_from_the_crd() -> None:
    assert (REPO / "docs" / "api-reference.md").read_text() == api_reference.render(), (
        "docs/api-reference.md is stale: run python -m webapp_scaler_dev.generate.api_reference"
    )


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")


def test_relative_links_in_the_docs_lead_somewhere() -> None:
    """Every relative link of the README, docs/ and the chart's README names a file that exists, and an
    anchor names a heading of that file: docs that point at moved files are docs that lie."""
    pages = [REPO / "README.md", REPO / "charts" / "webapp-scaler" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and file.suffix == ".md":
                headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}
                if anchor not in headings:
                    broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
