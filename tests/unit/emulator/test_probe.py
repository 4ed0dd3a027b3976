"""The emulator's readiness probe reads the VMI's probe as the kubelet does, timeoutSeconds included."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from emulator import probe
from emulator.config import EmulatorConfig


def test_probe_fields_and_defaults() -> None:
    spec = {
        "readinessProbe": {
            "httpGet": {"port": 9100, "path": "/readyz"},
            "periodSeconds": 2,
            "failureThreshold": 4,
            "timeoutSeconds": 3,
        }
    }
    assert probe.from_vmi(spec, EmulatorConfig()) == probe.Probe("http", 9100, "/readyz", 2.0, 4, 1, 3.0)
    default = probe.from_vmi({}, EmulatorConfig())
    assert (default.timeout, default.failure_threshold, default.path) == (1.0, 3, "/readyz")


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(2.0)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_answer_slower_than_the_timeout_fails_and_a_longer_timeout_waits_for_it(slow_port: int) -> None:
    assert not probe.check(probe.Probe("http", slow_port, "/", timeout=1.0), "127.0.0.1")
    assert probe.check(probe.Probe("http", slow_port, "/", timeout=10.0), "127.0.0.1")
