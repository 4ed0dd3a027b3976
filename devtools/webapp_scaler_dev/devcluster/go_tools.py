"""Where the Go harnesses of the status tests live, and how to get them built.

`kstatus` (hack/kstatus) prints sigs.k8s.io/cli-utils' kstatus verdict of objects; `lua-health`
(hack/lua-health) runs an Argo CD health script with the library set Argo CD gives scripts of argocd-cm.
`hack/build-go-tools.sh` builds both into `$WEBAPP_SCALER_CACHE/bin/go-tools-<versions>-<hash>/`; the
versions come from `versions.env` and the hash from the harnesses' sources, computed here exactly as the
script does, so an edited harness is never answered by a stale binary.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from webapp_scaler_dev.devcluster.binaries import REPO_ROOT, cache_dir, pinned_versions, run_build_script

HACK = REPO_ROOT / "hack"
GO_TOOLS_SCRIPT = HACK / "build-go-tools.sh"
HARNESSES = ("kstatus", "lua-health")


@dataclass(frozen=True)
class GoTools:
    """Absolute paths of the two harness binaries of one pinned version set and source hash."""

    directory: Path

    @property
    def kstatus(self) -> Path:
        return self.directory / "kstatus"

    @property
    def lua_health(self) -> Path:
        return self.directory / "lua-health"

    @property
    def missing(self) -> list[str]:
        return [str(p.name) for p in (self.kstatus, self.lua_health) if not os.access(p, os.X_OK)]


def source_hash() -> str:
    """The first 12 hex digits of sha256 over the harnesses' *.go, go.mod and go.sum, in byte order of
    their paths under hack/ — what `hack/build-go-tools.sh` computes with find | LC_ALL=C sort | cat."""
    files = sorted(
        str(path.relative_to(HACK))
        for harness in HARNESSES
        for path in (HACK / harness).rglob("*")
        if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum"))
    )
    digest = hashlib.sha256()
    for name in files:
        digest.update((HACK / name).read_bytes())
    return digest.hexdigest()[:12]


def expected_go_tools() -> GoTools:
    v = pinned_versions()
    name = f"go-tools-cli-utils-{v['CLI_UTILS_VERSION']}-gopher-lua-{v['GOPHER_LUA_VERSION']}-{source_hash()}"
    return GoTools(cache_dir() / "bin" / name)


def go_tools(*, build: bool = False) -> GoTools:
    """The built harnesses; with `build`, `hack/build-go-tools.sh` builds them first when missing."""
    tools = expected_go_tools()
    if tools.missing and build:
        run_build_script(GO_TOOLS_SCRIPT)
    if tools.missing:
        raise FileNotFoundError(f"{', '.join(tools.missing)} missing in {tools.directory}; run `make go-tools`")
    return tools
