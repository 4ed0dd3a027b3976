"""Where the pinned control-plane binaries live, and how to get them built.

The versions are pinned in `versions.env` next to this file; `hack/build-control-plane.sh` builds them
from the Go module proxy into a cache outside the repository (`$WEBAPP_SCALER_CACHE`, default
`~/.cache/webapp-scaler`). Both read the same file, so the cache path never disagrees.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.env")
REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-control-plane.sh"
LOAD_BALANCERS_SCRIPT = REPO_ROOT / "hack" / "build-load-balancers.sh"
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the control-plane tools of one pinned version set."""

    directory: Path
    kubernetes_version: str

    def __getitem__(self, tool: str) -> Path:
        if tool not in TOOLS:
            raise KeyError(tool)
        return self.directory / tool

    @property
    def missing(self) -> list[str]:
        return [t for t in TOOLS if not os.access(self[t], os.X_OK)]


def pinned_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def cache_dir() -> Path:
    return Path(os.environ.get("WEBAPP_SCALER_CACHE", Path.home() / ".cache" / "webapp-scaler"))


def expected_binaries() -> Binaries:
    v = pinned_versions()
    name = f"k8s-{v['KUBERNETES_VERSION']}-etcd-{v['ETCD_VERSION']}-helm-{v['HELM_VERSION']}"
    return Binaries(cache_dir() / "bin" / name, v["KUBERNETES_VERSION"])


def find_binaries(*, build: bool = False) -> Binaries:
    """Return the cached binaries; build them first when `build` is set and some are missing."""
    binaries = expected_binaries()
    if binaries.missing and build:
        run_build_script(BUILD_SCRIPT)
    if binaries.missing:
        raise FileNotFoundError(
            f"control-plane binaries missing in {binaries.directory}: {', '.join(binaries.missing)}; "
            "run `make control-plane`"
        )
    return binaries


def traefik_binary(*, build: bool = False) -> Path:
    """The pinned Traefik, built by `hack/build-load-balancers.sh` (with `build`, when missing)."""
    path = cache_dir() / "bin" / f"traefik-{pinned_versions()['TRAEFIK_VERSION']}" / "traefik"
    if not os.access(path, os.X_OK) and build:
        run_build_script(LOAD_BALANCERS_SCRIPT, "traefik")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} missing; run `make load-balancers`")
    return path


def gateway_api_crds(channel: str, *, build: bool = False) -> Path:
    """The directory of the pinned Gateway API CRDs of one release channel (`standard` or `experimental`)."""
    if channel not in ("standard", "experimental"):
        raise ValueError(f"unknown Gateway API channel {channel!r}: standard or experimental")
    path = cache_dir() / f"gateway-api-{pinned_versions()['GATEWAY_API_VERSION']}" / channel
    if not path.is_dir() and build:
        run_build_script(LOAD_BALANCERS_SCRIPT, "gateway-api")
    if not path.is_dir():
        raise FileNotFoundError(f"{path} missing; run `make load-balancers`")
    return path


def run_build_script(script: Path, *args: str) -> None:
    """One of the project's `hack/` build scripts (they cache what they build and print progress on stderr)."""
    if not script.exists():
        raise FileNotFoundError(f"{script} not found; run from a checkout of webapp-scaler")
    subprocess.run(["bash", str(script), *args], check=True, stdout=subprocess.DEVNULL)
