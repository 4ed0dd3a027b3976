"""A proxy configured from the Service's endpoints: the whole configuration rendered from the backends,
checked by the proxy's own binary before it replaces the running one, and applied by a signal to the
master process, which starts new workers and lets the old ones finish what they serve.

HAProxy and nginx differ only in their configuration, their command lines, their reload signal and how
they say they are up; the rest lives here once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from webapp_scaler_dev.loadbalancers.endpoints import Backend
from webapp_scaler_dev.processes import die_with_parent, stop


class ProxyError(RuntimeError):
    """The proxy refused a configuration or did not start; the message carries its output."""


class ReloadingProxy:
    """The master process of one proxy, reloaded on every change of the backends that matter to it."""

    name = "proxy"
    reload_signal = signal.SIGHUP

    def __init__(self, workdir: Path, binary: str, config_name: str) -> None:
        self.workdir = workdir
        self.binary = binary
        self.config_path = workdir / config_name
        self.log_path = workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.backends: frozenset[Backend] = frozenset()
        self.reloads = 0
        self._lock = threading.Lock()

    # ---- what a proxy says about itself ----------------------------------------------------------
    @property
    def url(self) -> str:
        raise NotImplementedError

    def render(self, backends: Iterable[Backend]) -> str:
        raise NotImplementedError

    def run_argv(self) -> list[str]:
        raise NotImplementedError

    def check_argv(self, candidate: Path) -> list[str]:
        raise NotImplementedError

    def started(self) -> bool:
        raise NotImplementedError

    def relevant(self, backends: frozenset[Backend]) -> frozenset[Backend]:
        """The part of the backends its configuration depends on (all of them, unless it drops some)."""
        return backends

    # ---- the shared lifecycle ---------------------------------------------------------------------
    def start(self, backends: Iterable[Backend] = ()) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.backends = frozenset(backends)
        self._write_checked(self.render(self.backends))
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.run_argv(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # its workers follow the master: nothing outlives a killed run
            )
        deadline = time.monotonic() + 10
        while not self.started():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ProxyError(f"{self.name} did not start:\n{self.output()}")
            time.sleep(0.05)

    def update(self, backends: Iterable[Backend]) -> bool:
        """Apply this set of backends; reload only when what the configuration depends on changed.
        Returns whether it reloaded."""
        wanted = frozenset(backends)
        with self._lock:
            unchanged = self.relevant(wanted) == self.relevant(self.backends)
            if unchanged or self.process is None:
                self.backends = wanted
                return False
            self._write_checked(self.render(wanted))
            self.process.send_signal(self.reload_signal)  # the master re-reads the file, starts new workers
            self.backends = wanted
            self.reloads += 1
            return True

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, 10)
            self.process = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def _write_checked(self, text: str) -> None:
        """Validate the new configuration before it replaces the running one."""
        candidate = self.config_path.with_suffix(".new")
        candidate.write_text(text)
        check = subprocess.run(self.check_argv(candidate), capture_output=True, text=True)
        if check.returncode != 0:
            raise ProxyError(f"{self.name} rejected the configuration: {check.stderr.strip()}\n{text}")
        os.replace(candidate, self.config_path)
