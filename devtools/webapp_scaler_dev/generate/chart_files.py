"""Copy the files the Helm chart and the kustomize base ship from their one source in the repository.

The chart (`charts/webapp-scaler/`) renders the WebAppScaling CRD, the admission policy and the monitoring
files with `.Files.Get`, and `kubectl kustomize` may not read files outside its directory, so the chart and
the kustomize base (the CRD of `crds/`) need a copy of their own. The copies are never edited by hand:
this module writes them byte for byte from the sources, and `tests/unit/test_chart.py` fails when one
differs, or exists while its source does not.

The monitoring sources (`monitoring/alerts.yaml`, `monitoring/dashboard.json`) are optional: while a
source is absent its copy must be absent too, and running this module removes a stale one.

Run: python -m webapp_scaler_dev.generate.chart_files   (or `make generate`)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "webapp-scaler"
COMMAND = "python -m webapp_scaler_dev.generate.chart_files"


@dataclass(frozen=True)
class Copy:
    """One generated file: `target` holds exactly the bytes of `source` (both relative to the repository)."""

    source: str
    target: str
    optional: bool = False
    """The source may be absent; then the copy must be absent too."""

    def source_path(self, root: Path = REPO) -> Path:
        return root / self.source

    def target_path(self, root: Path = REPO) -> Path:
        return root / self.target


COPIES = (
    # the chart
    Copy("crds/webappscaling.yaml", "charts/webapp-scaler/files/crds/webappscaling.yaml"),
    Copy("manifests/base/admission-policy.yaml", "charts/webapp-scaler/files/admission-policy.yaml"),
    Copy("monitoring/alerts.yaml", "charts/webapp-scaler/files/monitoring/alerts.yaml", optional=True),
    Copy("monitoring/dashboard.json", "charts/webapp-scaler/files/monitoring/dashboard.json", optional=True),
    # the kustomize base (manifests/base/): kustomize loads files below its own directory only
    Copy("crds/webappscaling.yaml", "manifests/base/crds/webappscaling.yaml"),
)


def expected(copy: Copy, root: Path = REPO) -> bytes | None:
    """What the copy must hold: its source's bytes, or None when it must not exist."""
    source = copy.source_path(root)
    if source.exists():
        return source.read_bytes()
    if copy.optional:
        return None
    raise FileNotFoundError(f"{copy.source} is missing: it is the source of {copy.target}")


def stale(copies: Sequence[Copy] = COPIES, root: Path = REPO) -> list[str]:
    """Every copy that differs from its source, is missing, or exists without its source."""
    problems = []
    for copy in copies:
        want = expected(copy, root)
        target = copy.target_path(root)
        have = target.read_bytes() if target.exists() else None
        if want is None and have is not None:
            problems.append(f"{copy.target} exists but its source {copy.source} does not")
        elif want is not None and have is None:
            problems.append(f"{copy.target} is missing (a copy of {copy.source})")
        elif want != have:
            problems.append(f"{copy.target} differs from its source {copy.source}")
    return problems


def write(copies: Sequence[Copy] = COPIES, root: Path = REPO) -> list[str]:
    """Bring every copy up to date; the targets written or removed."""
    changed = []
    for copy in copies:
        want = expected(copy, root)
        target = copy.target_path(root)
        if want is None:
            if target.exists():
                target.unlink()
                changed.append(f"removed {copy.target}")
            continue
        if not target.exists() or target.read_bytes() != want:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(want)
            changed.append(f"wrote {copy.target}")
    return changed


if __name__ == "__main__":
    for line in write():
        sys.stdout.write(line + "\n")
