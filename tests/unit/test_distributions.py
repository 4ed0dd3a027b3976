"""The three distributions ship only their own code and pull in only their own dependencies: the operator
image carries no plotting or terminal libraries, a VM's agent no Kubernetes client.

Checked on the resolved graph twice: in uv.lock, which is what a fresh `uv sync` installs (every
platform's markers taken as true, so nothing slips in elsewhere), and in this environment's installed
metadata (markers evaluated here), which is what the tests run against. Declared imports are
.importlinter's business; this is about what pip would install.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.conftest import REPO

OPERATOR = "webapp-scaler"
AGENT = "webapp-scaler-session-agent"
DEVTOOLS = "webapp-scaler-devtools"

# distribution -> (its directory, the top-level packages its wheel holds)
LAYOUT = {
    OPERATOR: ("operator", {"webapp_scaler"}),
    AGENT: ("sidecar", {"session_agent"}),
    DEVTOOLS: ("devtools", {"webapp_scaler_dev", "emulator", "webshop"}),
}
NEVER_IN = {
    OPERATOR: {"numpy", "matplotlib", "rich", AGENT, DEVTOOLS},
    AGENT: {"kopf", "kubernetes", "numpy", "matplotlib", "rich", OPERATOR, DEVTOOLS},
}


Node = tuple[str, frozenset[str]]
"""A distribution and the extras asked of it."""


def closure(root: str, dependencies: Callable[[Node], Iterable[Node]]) -> set[str]:
    """Every distribution `root` pulls in, itself included (names canonical)."""
    seen: set[Node] = set()
    pending: list[Node] = [(canonicalize_name(root), frozenset())]
    while pending:
        node = pending.pop()
        if node not in seen:
            seen.add(node)
            pending += [(canonicalize_name(name), extras) for name, extras in dependencies(node)]
    return {name for name, _ in seen}


@cache
def lock() -> dict[str, dict[str, Any]]:
    packages = tomllib.loads((REPO / "uv.lock").read_text())["package"]
    return {canonicalize_name(p["name"]): p for p in packages}


def locked_dependencies(node: Node) -> list[Node]:
    """A package's own requirements and those of the extras asked of it; other extras are left out."""
    name, extras = node
    package = lock()[name]
    wanted = [*package.get("dependencies", [])]
    wanted += [d for extra in extras for d in package.get("optional-dependencies", {}).get(extra, [])]
    return [(d["name"], frozenset(d.get("extra", []))) for d in wanted]


def installed_dependencies(node: Node) -> list[Node]:
    """Requires-Dist with the markers evaluated here; an extra's requirements only where it is asked for."""
    name, extras = node
    found = []
    for text in importlib.metadata.distribution(name).requires or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in ["", *extras]):
            found.append((requirement.name, frozenset(requirement.extras)))
    return found


def pyproject(directory: str) -> dict[str, Any]:
    return tomllib.loads((REPO / directory / "pyproject.toml").read_text())


def requirement_names(requirements: Iterable[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, requirements)}


GRAPHS = [
    pytest.param(locked_dependencies, id="uv.lock"),
    pytest.param(installed_dependencies, id="installed"),
]


@pytest.mark.parametrize("dependencies", GRAPHS)
@pytest.mark.parametrize("distribution", NEVER_IN)
def test_closure_leaves_out_what_the_distribution_never_needs(
    distribution: str, dependencies: Callable[[Node], Iterable[Node]]
) -> None:
    pulled_in = closure(distribution, dependencies)
    assert not pulled_in & NEVER_IN[distribution], sorted(pulled_in & NEVER_IN[distribution])


@pytest.mark.parametrize("dependencies", GRAPHS)
def test_the_dev_tools_pull_in_both_and_their_own_libraries(dependencies: Callable[[Node], Iterable[Node]]) -> None:
    """The other side of the closure tests: the graph walked is the real one, not an empty one."""
    pulled_in = closure(DEVTOOLS, dependencies)
    assert {OPERATOR, AGENT, "kopf", "kubernetes", "numpy", "matplotlib", "rich", "aiohttp"} <= pulled_in
    assert {"kopf", "kubernetes"} <= closure(OPERATOR, dependencies)
    assert {"aiohttp", "prometheus-client"} <= closure(AGENT, dependencies)


def test_closure_finds_a_forbidden_package_however_deep_and_behind_an_extra() -> None:
    graph: dict[str, list[Node]] = {
        "webapp-scaler": [("kopf", frozenset({"full"}))],
        "kopf": [("aiohttp", frozenset())],
        "kopf[full]": [("rich", frozenset())],
        "aiohttp": [("kopf", frozenset())],  # a cycle ends too
        "rich": [],
    }

    def dependencies(node: Node) -> list[Node]:
        name, extras = node
        return graph[name] + [d for extra in sorted(extras) for d in graph[f"{name}[{extra}]"]]

    assert closure("webapp-scaler", dependencies) == {"webapp-scaler", "kopf", "aiohttp", "rich"}


@pytest.mark.parametrize("distribution", LAYOUT)
def test_the_lock_matches_each_pyproject(distribution: str) -> None:
    """uv.lock is what `make setup` installs (`uv sync --frozen`): a pyproject edited without `make lock`
    would otherwise go unnoticed until a fresh clone."""
    directory, _ = LAYOUT[distribution]
    declared = requirement_names(pyproject(directory)["project"]["dependencies"])
    locked = lock()[canonicalize_name(distribution)]
    assert locked["source"] == {"editable": directory}
    recorded: dict[str, Any] = {canonicalize_name(r["name"]): r for r in locked["metadata"]["requires-dist"]}
    assert recorded.keys() == declared.keys(), "uv.lock is stale: run `make lock`"
    for name, requirement in declared.items():
        assert requirement.specifier == SpecifierSet(recorded[name].get("specifier", "")), f"{name}: run `make lock`"
        marker = recorded[name].get("marker")
        assert requirement.marker == (Marker(marker) if marker else None), f"{name}: run `make lock`"


@pytest.mark.parametrize("distribution", LAYOUT)
def test_each_wheel_holds_only_its_own_packages(distribution: str) -> None:
    directory, packages = LAYOUT[distribution]
    found = {p.parent.name for p in (REPO / directory).glob("*/__init__.py")}
    assert found == packages, f"{directory}/ holds the packages {sorted(found)}"
    include = pyproject(directory)["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {re.sub(r"\*$", "", pattern) for pattern in include} == packages
    top_level = (importlib.metadata.distribution(distribution).read_text("top_level.txt") or "").split()
    assert set(top_level) == packages, f"the installed {distribution} provides {sorted(top_level)}"


def test_the_workspace_root_installs_nothing_of_its_own() -> None:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "project" not in root
    assert sorted(root["tool"]["uv"]["workspace"]["members"]) == sorted(d for d, _ in LAYOUT.values())


def test_a_range_is_written_once() -> None:
    """The operator and the agent share no code, so each bounds what it uses, and where both use a
    package the ranges are the same; the dev tools, installed with both, leave those ranges to them."""
    operator = requirement_names(pyproject("operator")["project"]["dependencies"])
    agent = requirement_names(pyproject("sidecar")["project"]["dependencies"])
    for name in operator.keys() & agent.keys():
        assert operator[name].specifier == agent[name].specifier, name
    for name, requirement in requirement_names(pyproject("devtools")["project"]["dependencies"]).items():
        if name in operator or name in agent or name in (OPERATOR, AGENT):
            assert not requirement.specifier, f"the dev tools repeat the range of {name}"
        else:
            assert requirement.specifier, f"the dev tools' own {name} has no range"
