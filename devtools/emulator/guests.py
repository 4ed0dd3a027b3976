"""The guests: each VMI's "VM" is a group of real local processes (by default the web shop and the
session agent), started in one process group so stopping the VM stops all of it.

Every guest process is started with PR_SET_PDEATHSIG, so the kernel kills it when the emulator dies,
even by SIGKILL; a normal emulator stop terminates each group (SIGTERM, then SIGKILL after a grace).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from emulator.logs import fields
from emulator.network import Attachment
from webapp_scaler_dev.processes import die_with_parent

log = logging.getLogger("emulator.guests")


@dataclass
class Guest:
    namespace: str
    name: str
    uid: str
    attachment: Attachment
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def pgid(self) -> int | None:
        return self.processes[0].pid if self.processes else None

    def exited(self) -> list[tuple[int, int]]:
        """(pid, exit code) of the processes that are no longer running."""
        return [(p.pid, code) for p in self.processes if (code := p.poll()) is not None]


def _spawn(argv: list[str], env: dict[str, str], log_path: Path, pgid: int | None) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            process_group=pgid or 0,  # the first process leads the VM's group, the others join it
            preexec_fn=die_with_parent(),  # the emulator
        )


class GuestSupervisor:
    def __init__(self, logdir: Path, release: Callable[[Attachment], None]) -> None:
        """`release` frees a guest's address once its processes are gone."""
        self.logdir = logdir
        self.release = release
        self._guests: dict[tuple[str, str], Guest] = {}
        self._lock = threading.Lock()
        self._reapers: list[threading.Thread] = []
        # The kernel sends PDEATHSIG when the *thread* that forked a child exits, so every guest is
        # forked by this one thread, which lives until all guests are stopped.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guest-spawner")

    def get(self, namespace: str, name: str) -> Guest | None:
        with self._lock:
            return self._guests.get((namespace, name))

    def all(self) -> list[Guest]:
        with self._lock:
            return list(self._guests.values())

    def start(
        self, namespace: str, name: str, uid: str, attachment: Attachment, argvs: list[list[str]], env: dict[str, str]
    ) -> Guest:
        guest = Guest(namespace, name, uid, attachment)
        logdir = self.logdir / namespace
        logdir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **env}
        try:
            for index, argv in enumerate(argvs):
                log_path = logdir / f"{name}.{index}.log"
                guest.processes.append(self._spawner.submit(_spawn, argv, full_env, log_path, guest.pgid).result())
        except BaseException:
            self._terminate(guest, grace=0.0)
            raise
        with self._lock:
            self._guests[(namespace, name)] = guest
        log.info(
            "guest started",
            extra=fields(namespace=namespace, vm=name, ip=attachment.ip, pids=[p.pid for p in guest.processes]),
        )
        return guest

    def stop(self, namespace: str, name: str, grace: float, *, wait: bool = False) -> Guest | None:
        """Terminate the guest's process group; returns the guest (its attachment is the caller's to free)."""
        with self._lock:
            guest = self._guests.pop((namespace, name), None)
        if guest is None:
            return None
        log.info("guest stopping", extra=fields(namespace=namespace, vm=name, pgid=guest.pgid))
        if wait:
            self._terminate(guest, grace)
        else:
            reaper = threading.Thread(target=self._terminate, args=(guest, grace), daemon=True)
            reaper.start()
            with self._lock:
                self._reapers = [r for r in self._reapers if r.is_alive()] + [reaper]
        return guest

    def stop_all(self, grace: float) -> list[Guest]:
        guests = self.all()
        threads = [
            threading.Thread(target=self.stop, args=(g.namespace, g.name, grace), kwargs={"wait": True}) for g in guests
        ]
        for thread in threads:
            thread.start()
        with self._lock:
            reapers = list(self._reapers)
        for thread in threads + reapers:
            thread.join()
        return guests

    def close(self) -> None:
        """After `stop_all`: the spawner thread may end now that no guest depends on it."""
        self._spawner.shutdown(wait=True)

    def _terminate(self, guest: Guest, grace: float) -> None:
        try:
            self._kill(guest, grace)
        finally:
            self.release(guest.attachment)

    @staticmethod
    def _kill(guest: Guest, grace: float) -> None:
        pgid = guest.pgid
        if pgid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in guest.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # also whatever the guest forked into its group
        for process in guest.processes:
            process.wait()
        log.info(
            "guest stopped",
            extra=fields(namespace=guest.namespace, vm=guest.name, codes=[p.returncode for p in guest.processes]),
        )
