"""Lint the Dockerfile with Docker's own parser (the `dockerfile` package wraps moby's buildkit parser):
no image can be built on machines without a Docker engine, so what can be checked statically is."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import dockerfile
import pytest
import yaml

from tests.conftest import REPO

COMMANDS = dockerfile.parse_file(str(REPO / "Dockerfile"))


def stages() -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    current: list[Any] = []
    for command in COMMANDS:
        if command.cmd == "FROM":
            current = []
            name = (
                command.value[2] if len(command.value) == 3 and command.value[1].upper() == "AS" else command.value[0]
            )
            found[name] = current
        current.append(command)
    return found


def lineage(target: str) -> list[Any]:
    """The commands of a target and of every stage it is built `FROM` or copies `--from`, so that what
    a final image contains can be checked across its build stages."""
    found = stages()
    seen: list[str] = []
    pending = [target]
    while pending:
        name = pending.pop()
        if name in seen or name not in found:
            continue
        seen.append(name)
        for command in found[name]:
            if command.cmd == "FROM":
                pending.append(command.value[0])
            pending += [f.split("=", 1)[1] for f in command.flags if f.startswith("--from=")]
    return [command for name in seen for command in found[name]]


# target -> the one directory (distribution) its image is built from
DISTRIBUTIONS = {"operator": "operator", "agent": "sidecar"}
# a requirement with a version range, as pip or a pyproject.toml writes it: name, operator, version
VERSION_RANGE = re.compile(r"[A-Za-z0-9_\]-]\s*(?:===?|>=|<=|~=|!=|<|>)\s*v?\d")


def test_targets_exist() -> None:
    assert {"agent", "operator"} <= stages().keys()


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.cmd == "FROM"], ids=lambda c: c.original)
def test_base_images_are_pinned(command: Any) -> None:
    image = command.value[0]
    assert ":" in image and not image.endswith(":latest"), f"{image} is not pinned to a tag"


@pytest.mark.parametrize("target", ["agent", "operator"])
def test_final_stages_run_as_a_non_root_user_with_exec_form_entrypoints(target: str) -> None:
    stage = stages()[target]
    users = [c.value[0] for c in stage if c.cmd == "USER"]
    assert users and users[-1] not in ("root", "0")
    [entrypoint] = [c for c in stage if c.cmd == "ENTRYPOINT"]
    assert entrypoint.json, "ENTRYPOINT must use the exec (JSON) form so signals reach the process"


def test_copy_sources_exist_and_from_stages_are_defined() -> None:
    names = set()
    for command in COMMANDS:
        if command.cmd == "FROM":
            names.add(command.value[-1])
            continue
        if command.cmd != "COPY":
            continue
        origin = next((f.split("=", 1)[1] for f in command.flags if f.startswith("--from=")), None)
        if origin is not None:
            assert origin in names, f"COPY --from={origin} names no earlier stage"
            continue
        for source in command.value[:-1]:
            assert (REPO / source).exists(), f"COPY source {source} does not exist"


def test_operator_entrypoint_is_a_declared_console_script_and_matches_the_deployment() -> None:
    scripts = tomllib.loads((REPO / "operator" / "pyproject.toml").read_text())["project"]["scripts"]
    stage = stages()["operator"]
    [entrypoint] = [c.value[0] for c in stage if c.cmd == "ENTRYPOINT"]
    assert entrypoint in scripts
    deployment = yaml.safe_load((REPO / "manifests" / "base" / "deployment.yaml").read_text())
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "operator"
    exposed = {int(p) for c in stage if c.cmd == "EXPOSE" for p in c.value}
    assert {p["containerPort"] for p in container["ports"]} <= exposed
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(
        next(c.value[0] for c in stage if c.cmd == "USER")
    )


def test_no_apt_install_without_cleanup() -> None:
    for command in COMMANDS:
        if command.cmd == "RUN" and re.search(r"apt-get install", command.value[0]):
            assert "rm -rf /var/lib/apt/lists" in command.value[0]


@pytest.mark.parametrize(("target", "directory"), DISTRIBUTIONS.items())
def test_each_image_copies_and_installs_only_its_own_distribution(target: str, directory: str) -> None:
    commands = lineage(target)
    copied = {
        source.rstrip("/")
        for c in commands
        if c.cmd == "COPY" and not any(f.startswith("--from=") for f in c.flags)
        for source in c.value[:-1]
    }
    assert copied == {directory}, f"the {target} image is built from {sorted(copied)}, not only {directory}/"
    assert (REPO / directory / "pyproject.toml").exists()
    installs = [c.value[0] for c in commands if c.cmd == "RUN" and re.search(r"\bpip (wheel|install)\b", c.value[0])]
    assert any(re.search(rf"\bpip (wheel|install)\b.* \./{directory}(\s|$)", run) for run in installs), installs
    others = set(DISTRIBUTIONS.values()) - {directory} | {"devtools", "webshop", "emulator"}
    for run in installs:
        assert not any(re.search(rf"\b{name}\b", run) for name in others), run


def test_no_dependency_ranges_in_the_dockerfile() -> None:
    """The ranges live in each distribution's pyproject.toml; pip reads them from the wheel's metadata."""
    for command in COMMANDS:
        if command.cmd == "RUN":
            assert not VERSION_RANGE.search(command.value[0]), f"a version range in: {command.original}"


def test_version_range_pattern_catches_what_a_dockerfile_would_write() -> None:
    for written in ('pip install "aiohttp>=3.9,<4"', "pip install uvloop==0.19.0", "pip install 'kopf ~= 1.38'"):
        assert VERSION_RANGE.search(written), written
    for harmless in ("pip install ./sidecar 2>/dev/null", "pip install /wheels/*.whl && rm -rf /wheels"):
        assert not VERSION_RANGE.search(harmless), harmless
