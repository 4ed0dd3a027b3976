"""A proxy configured from the Service's endpoints: the whole configuration rendered from the backends,
checked by the proxy's own binary before it replaces the running one, and applied by a signal to the
master process, which starts new workers and lets the old ones finish what they serve.

HAProxy and nginx differ only in their configuration, their command lines, their reload signal and how
they say they are up; the rest lives here once.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from webapp_scaler_dev.loadbalancers.endpoints import Backend
from webapp_scaler_dev.processes import die_with_parent, stop

log = logging.getLogger("webapp_scaler_dev.loadbalancers")

RELOAD_ATTEMPTS = 3
RELOAD_WAIT_S = 10.0


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

    def applied(self, text: str) -> bool | None:
        """Whether the running workers serve the configuration `text`, as the proxy itself reports it;
        None when the proxy has no way to say (then a reload is taken on trust)."""
        return None

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
            text = self.render(wanted)
            self._write_checked(text)
            self._reload(text)
            self.backends = wanted
            return True

    def _reload(self, text: str) -> None:
        """Signal the master (it re-reads the file and starts new workers) and, where the proxy can say,
        wait until the running workers serve `text`. A reload can fail while the previous one is still
        handing its listeners over; the old workers then keep serving the old servers, and without this
        check every later request would go by a configuration nobody sees."""
        assert self.process is not None
        for attempt in range(1, RELOAD_ATTEMPTS + 1):
            self.process.send_signal(self.reload_signal)
            self.reloads += 1
            deadline = time.monotonic() + RELOAD_WAIT_S
            while True:
                state = self.applied(text)
                if state is None or state:
                    return
                if time.monotonic() > deadline or self.process.poll() is not None:
                    break
                time.sleep(0.1)
            log.warning(
                "%s: reload %d of %d not in effect after %.0f s", self.name, attempt, RELOAD_ATTEMPTS, RELOAD_WAIT_S
            )
        tries = f"{RELOAD_ATTEMPTS} reloads"
        raise ProxyError(f"{self.name} did not take the new configuration in {tries}:\n{self.output()}")

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
