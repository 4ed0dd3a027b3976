"""Child processes of the dev tools, the tests and the benchmarks: a port to give them, a kernel-enforced
end when their parent dies, and a bounded stop.

One copy for every launcher (control plane, emulator, guests, operator, HAProxy, benchmarks), so that a
killed test run or demo leaves nothing behind in the same way everywhere. Linux only (prctl).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
# Loaded at import, in the parent: between fork and exec the child must not dlopen (it may hold no lock).
_LIBC = ctypes.CDLL(None, use_errno=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now, to hand to a child that binds it. Another process may take it
    in between; on a loopback address of a test machine that race is rare enough to accept."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` after which the kernel sends `sig` to the child when its parent dies, even by SIGKILL.

    SIGKILL (the default) where no one is left to wait for a graceful stop; SIGTERM for a child that
    must take its own children down first. The kernel signals when the *thread* that forked the child
    exits, so fork long-lived children from a thread that outlives them.
    """
    number = int(sig)

    def preexec() -> None:  # in the child, between fork and exec: nothing but the system call
        _LIBC.prctl(PR_SET_PDEATHSIG, number)

    return preexec


def stop(process: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM, up to `grace` seconds to exit cleanly, then SIGKILL; returns once the process is reaped."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def operator_process(
    kubeconfig: Path, log: Path, namespaces: Sequence[str] = (), *, metrics_port: int = 0
) -> subprocess.Popen[bytes]:
    """`webapp-scaler operator --standalone` for a dev cluster (every namespace when none is given), its
    output appended to `log`, ended by the kernel if its parent dies; its /metrics on 127.0.0.1:`metrics_port`
    (0: none)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "webapp_scaler.cli", "operator", "--standalone"]
    argv += [a for ns in namespaces for a in ("-n", ns)] or ["--all-namespaces"]
    argv += ["--metrics-port", str(metrics_port), "--metrics-address", "127.0.0.1"]
    argv += ["--liveness", "off", "--log-format", "plain"]
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
