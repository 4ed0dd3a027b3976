"""The golden-image files (systemd unit, cloud-init snippet, Dockerfile) start the agent correctly and
install it as the `webapp-scaler-session-agent` distribution, whose ranges only sidecar/pyproject.toml holds."""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from session_agent import agent, cli
from tests.conftest import REPO

SYSTEMD = REPO / "sidecar" / "systemd"
CLOUD_INIT = REPO / "sidecar" / "cloud-init" / "session-agent.yaml"
WEBSHOP_UNIT = REPO / "devtools" / "webshop" / "webshop.service"
AGENT = tomllib.loads((REPO / "sidecar" / "pyproject.toml").read_text())["project"]


def _args_of(text: str, variable: str) -> list[str]:
    match = re.search(rf'{variable}="([^"]+)"', text)
    assert match, f"{variable} not set"
    return shlex.split(match.group(1))


def _cloud_init() -> dict[str, object]:
    document = yaml.safe_load(CLOUD_INIT.read_text())
    assert CLOUD_INIT.read_text().startswith("#cloud-config\n")
    assert isinstance(document, dict)
    return document


def _file(document: dict[str, object], path: str) -> str:
    files = document["write_files"]
    assert isinstance(files, list)
    return str(next(f["content"] for f in files if f["path"] == path))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param((SYSTEMD / "session-agent.service").read_text(), id="systemd-unit"),
        pytest.param(_file(_cloud_init(), "/etc/default/session-agent"), id="cloud-init-defaults"),
    ],
)
def test_shipped_arguments_are_a_valid_agent_configuration(text: str) -> None:
    arguments = _args_of(text, "SESSION_AGENT_ARGS")
    config = cli.config_from(cli.parser().parse_args(arguments))
    agent.Agent(config)  # validates the source's settings
    assert config.source == "proxy"
    assert (config.listen_port, config.metrics_port) == (8080, 9100)
    # the VM's own token, from the Secret disk the operator attaches (mounted by the cloud-init)
    assert config.drain_token_file == Path("/var/lib/session-agent/drain-token/token")


def test_cloud_init_installs_the_same_unit_it_documents() -> None:
    document = _cloud_init()
    unit = _file(document, "/etc/systemd/system/session-agent.service")
    shipped = (SYSTEMD / "session-agent.service").read_text()
    for line in ("ExecStart=", "User=", "KillSignal=", "TimeoutStopSec="):
        ours = next(x for x in unit.splitlines() if x.startswith(line))
        assert ours in shipped.splitlines()
    assert "systemctl enable --now session-agent.service" in _runcmd(document)
    [mount] = document["mounts"]
    assert mount[:2] == ["/dev/disk/by-id/virtio-drain-token", "/var/lib/session-agent/drain-token"]


def _runcmd(document: dict[str, object]) -> str:
    commands = document["runcmd"]
    assert isinstance(commands, list)
    return "\n".join(str(c) for c in commands)


def _dependency_names() -> list[str]:
    names = []
    for requirement in AGENT["dependencies"]:
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert match, requirement
        names.append(match.group(0))
    return names


def test_the_agent_dependency_ranges_live_in_its_pyproject() -> None:
    assert AGENT["name"] == "webapp-scaler-session-agent"
    assert {"aiohttp", "prometheus-client"} <= set(_dependency_names())
    for requirement in AGENT["dependencies"]:
        assert re.search(r"[<>=~]", requirement), f"{requirement} has no range"


def test_cloud_init_installs_the_agent_wheel_by_path() -> None:
    runcmd = _runcmd(_cloud_init())
    wheel = AGENT["name"].replace("-", "_")  # a wheel's file name spells the distribution so
    installs = [line for line in runcmd.splitlines() if re.search(r"\bpip3? install\b", line)]
    assert installs, "the cloud-init installs nothing"
    assert all(f"/opt/session-agent/dist/{wheel}-*.whl" in line for line in installs), installs
    assert "webapp_scaler-" not in runcmd  # the operator's wheel never goes into a VM


def _dockerfile_runs() -> str:
    return "\n".join(line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("RUN "))


@pytest.mark.parametrize(
    "text",
    [pytest.param(lambda: _runcmd(_cloud_init()), id="cloud-init"), pytest.param(_dockerfile_runs, id="Dockerfile")],
)
def test_install_commands_name_none_of_the_agent_dependencies(text: Callable[[], str]) -> None:
    """pip takes them, with their ranges, from the wheel's metadata: a second copy here would drift."""
    commands = text()
    for name in [*_dependency_names(), "kopf", "kubernetes"]:
        assert not re.search(rf"(?<![\w/.-]){re.escape(name)}(?![\w/.-])", commands, re.IGNORECASE), name


def test_webshop_unit_arguments_parse() -> None:
    from webshop import cli as webshop_cli

    text = WEBSHOP_UNIT.read_text()
    arguments = _args_of(text, "WEBSHOP_ARGS")
    assert arguments[:2] == ["--listen", "127.0.0.1:8081"]  # loopback only: users go through the agent
    assert callable(webshop_cli.main)


def test_dockerfile_has_an_agent_stage_running_the_cli() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM \S+ AS agent$", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["python", "-m", "session_agent"]' in dockerfile
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd
    arguments = yaml.safe_load(cmd.group(1))
    cli.config_from(cli.parser().parse_args(arguments))
