"""`run_in_background(kubeconfig, **options)`: the emulator as a child process for tests and demos.

The child gets SIGTERM when the parent dies (PR_SET_PDEATHSIG), so a killed test run leaves no
emulator behind, and the emulator in turn takes its guests down with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.app import READY_MESSAGE
from webapp_scaler_dev.processes import die_with_parent, stop


class EmulatorNotReady(RuntimeError):
    """The emulator exited or did not report ready; the message carries its log tail."""


@dataclass
class RunningEmulator:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_entries(self) -> list[dict[str, Any]]:
        """The emulator's structured log so far."""
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entries.append(json.loads(line))
        return entries

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def command_line(kubeconfig: Path | str, options: dict[str, Any]) -> list[str]:
    """`clone_seconds=2` → `--clone-seconds 2`; True → a flag; a list or tuple → the option repeated."""
    argv = [sys.executable, "-m", "emulator", "--kubeconfig", str(kubeconfig)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


@contextlib.contextmanager
def run_in_background(
    kubeconfig: Path | str,
    *,
    log_path: Path | None = None,
    ready_timeout: float = 60.0,
    env: dict[str, str] | None = None,
    **options: Any,
) -> Iterator[RunningEmulator]:
    """Start `python -m emulator` with these options, wait until it reports ready, stop it afterwards
    (SIGTERM: it stops every guest), killing it if it does not exit in time. `env` is added to the
    environment of the emulator and so of its guests (e.g. the session agent's drain token)."""
    if log_path is None:
        log_path = Path(options.get("workdir") or "/tmp/webapp-emulator") / "emulator.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            command_line(kubeconfig, options),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=die_with_parent(signal.SIGTERM),  # SIGTERM: it stops its guests first
        )
    running = RunningEmulator(process, log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while not any(e.get("msg") == READY_MESSAGE for e in running.log_entries()):
            if process.poll() is not None:
                raise EmulatorNotReady(f"the emulator exited with {process.returncode}:\n{running.tail()}")
            if time.monotonic() > deadline:
                raise EmulatorNotReady(f"the emulator was not ready after {ready_timeout} s:\n{running.tail()}")
            time.sleep(0.1)
        yield running
    finally:
        stop(process, 30)
