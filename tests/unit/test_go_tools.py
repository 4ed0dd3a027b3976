"""The Go harnesses of the status tests (hack/kstatus, hack/lua-health) pin exactly what versions.env
says, and the Python finder looks where hack/build-go-tools.sh builds: a drift in either would let the
tests read objects with another cli-utils or gopher-lua than the one named, or rebuild for nothing."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import REPO
from webapp_scaler_dev.devcluster import go_tools
from webapp_scaler_dev.devcluster.binaries import pinned_versions


def required(harness: str) -> dict[str, str]:
    """module → version of every requirement in hack/<harness>/go.mod (block and one-line forms)."""
    text = (REPO / "hack" / harness / "go.mod").read_text()
    lines = re.findall(r"^\s*(?:require\s+)?([\w./-]+\.[\w./-]+)\s+(v\S+)", text, flags=re.M)
    return dict(lines)


@pytest.mark.parametrize(
    ("harness", "module", "key"),
    [
        ("kstatus", "sigs.k8s.io/cli-utils", "CLI_UTILS_VERSION"),
        ("lua-health", "github.com/yuin/gopher-lua", "GOPHER_LUA_VERSION"),
    ],
)
def test_each_go_mod_requires_the_version_versions_env_pins(harness: str, module: str, key: str) -> None:
    assert required(harness).get(module) == pinned_versions()[key]
    sums = (REPO / "hack" / harness / "go.sum").read_text()
    assert f"{module} {pinned_versions()[key]} h1:" in sums, f"hack/{harness}/go.sum has no hash of {module}"


def test_the_python_finder_hashes_the_sources_as_the_build_script_does() -> None:
    """The cache directory's name ends in a hash of the harnesses' sources; the script computes it with
    find | sort | cat | sha256sum, go_tools.source_hash() in Python. Run the script's own lines."""
    script = (REPO / "hack" / "build-go-tools.sh").read_text()
    lines = [line for line in script.splitlines() if line.startswith(("here=", "sources=", "hash="))]
    assert len(lines) == 3, "build-go-tools.sh no longer computes here, sources and hash on lines of their own"
    here = f"here={REPO / 'hack'}"
    result = subprocess.run(
        ["bash", "-c", "\n".join([here, *lines[1:], 'echo "$hash"'])], check=True, capture_output=True, text=True
    )
    assert result.stdout.strip() == go_tools.source_hash()
    assert go_tools.expected_go_tools().directory.name.endswith(go_tools.source_hash())


def test_the_finder_fails_loudly_without_building_when_the_binaries_are_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("WEBAPP_SCALER_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run `make go-tools`"):
        go_tools.go_tools(build=False)
