"""The command-line contract, as the golden image's systemd unit uses it: real processes, real ports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.unit.agent.conftest import user_client
from webapp_scaler_dev.processes import free_port

VENV_BIN = Path(sys.executable).parent


def _command(name: str) -> list[str]:
    script = VENV_BIN / name
    if script.exists():
        return [str(script)]
    module = {"session-agent": "session_agent", "webshop": "webshop"}[name]
    return [sys.executable, "-m", module]


@pytest.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    yield started
    for process in started:
        if process.returncode is None:
            process.kill()
        await process.communicate()


async def _wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as client:
        for _ in range(200):
            try:
                async with client.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


async def test_session_agent_command_line(processes: list[asyncio.subprocess.Process], tmp_path: Path) -> None:
    shop_port = free_port()
    token = tmp_path / "token"
    token.write_text("tok\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    shop = await asyncio.create_subprocess_exec(
        *_command("webshop"), "--listen", f"127.0.0.1:{shop_port}", "--session-timeout", "30", env=env
    )
    processes.append(shop)
    arguments = (
        f"--source proxy --listen 127.0.0.1:0 --upstream http://127.0.0.1:{shop_port}"
        f" --metrics-listen 127.0.0.1:0 --cookie JSESSIONID --cookie PHPSESSID"
        f" --idle-timeout 30 --drain-token-file {token}"
    ).split()
    agent = await asyncio.create_subprocess_exec(
        *_command("session-agent"), *arguments, stderr=asyncio.subprocess.PIPE, env=env
    )
    processes.append(agent)
    assert agent.stderr is not None
    async with asyncio.timeout(30):
        first_line = await agent.stderr.readline()
    started = json.loads(first_line)  # the bound addresses (port 0 picks free ones) are logged
    assert started["msg"] == "session agent started"
    metrics, proxy = f"http://{started['metrics']}", f"http://{started['listen']}"
    await _wait_ready(f"{metrics}/readyz")

    session_ids = []
    for i in range(3):
        async with user_client() as user:
            async with user.post(f"{proxy}/login", json={"user": f"u{i}"}) as r:
                assert r.status == 200
            session_ids += [cookie.value for cookie in user.cookie_jar]
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{metrics}/metrics") as r:
            text = await r.text()
        assert 'webapp_active_sessions{source="proxy"} 3.0' in text
        async with client.post(f"{metrics}/drain", headers={"Authorization": "Bearer tok"}) as r:
            report = await r.json()
    assert report["draining"] is True
    assert report["active_sessions"] == 3

    agent.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        _, stderr = await agent.communicate()
    assert agent.returncode == 0
    log_lines = [first_line.decode(), *stderr.decode().splitlines()]
    events = [json.loads(line) for line in log_lines]  # every line is one JSON object
    messages = [event["msg"] for event in events]
    assert "session agent started" in messages
    assert "drain started" in messages
    assert "session agent stopped" in messages
    for session_id in session_ids:
        assert session_id not in "\n".join(log_lines)


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(["--source", "proxy"], id="proxy-without-upstream"),
        pytest.param(["--source", "proxy", "--upstream", "https://x:1"], id="https-upstream"),
        pytest.param(["--source", "connections"], id="connections-without-port"),
    ],
)
def test_invalid_configuration_exits_2(arguments: list[str]) -> None:
    result = subprocess.run([*_command("session-agent"), *arguments], capture_output=True, timeout=30)
    assert result.returncode == 2
    assert json.loads(result.stderr.decode().splitlines()[-1])["msg"] == "invalid configuration"
