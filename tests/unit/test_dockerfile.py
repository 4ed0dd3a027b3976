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
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    stage = stages()["operator"]
    [entrypoint] = [c.value[0] for c in stage if c.cmd == "ENTRYPOINT"]
    assert entrypoint in scripts
    deployment = yaml.safe_load((REPO / "manifests" / "operator" / "deployment.yaml").read_text())
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
