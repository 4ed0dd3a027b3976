"""The demo's Prometheus: the Debian `prometheus` binary on loopback, scraping the operator and every VM's
session agent, with monitoring/alerts.yaml loaded, so the dashboard's queries and the alerts can be tried
on a live fleet.

VMs come and go, so the agents are a `file_sd_configs` targets file that `set_agents` rewrites (atomically:
Prometheus re-reads it on change) from the VMIs the demo follows. Each agent target carries the
WebAppScaling's namespace and name and its VM's name as labels, which a PodMonitor would give it in a real
cluster. The operator's metrics keep their own namespace/name labels (honor_labels), as alerts.yaml asks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from webapp_scaler_dev.monitoring import ALERTS
from webapp_scaler_dev.processes import die_with_parent, free_port, stop


@dataclass(frozen=True, order=True)
class AgentTarget:
    vm: str
    address: str
    port: int


@dataclass
class Prometheus:
    workdir: Path
    operator: str
    """host:port of the operator's /metrics."""
    namespace: str
    name: str
    scrape_s: float = 1.0
    rule_files: Sequence[Path] = (ALERTS,)
    binary: str = "prometheus"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    agents: list[AgentTarget] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_file(self) -> Path:
        return self.workdir / "agents.json"

    @staticmethod
    def installed(binary: str = "prometheus") -> bool:
        return shutil.which(binary) is not None

    def config(self) -> dict[str, Any]:
        interval = f"{self.scrape_s:g}s"
        return {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": "webapp-scaler-operator",
                    "honor_labels": True,
                    "static_configs": [{"targets": [self.operator]}],
                },
                {
                    "job_name": "session-agent",
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "5s"}],
                },
            ],
        }

    def set_agents(self, agents: Sequence[AgentTarget]) -> None:
        """Rewrite the targets file: a temporary file renamed over it, so Prometheus never reads half of one."""
        self.agents = sorted(agents)
        groups = [
            {
                "targets": [f"{a.address}:{a.port}"],
                "labels": {"namespace": self.namespace, "webappscaling": self.name, "vm": a.vm},
            }
            for a in self.agents
        ]
        partial = self.targets_file.with_suffix(".tmp")
        partial.write_text(json.dumps(groups, indent=1))
        os.replace(partial, self.targets_file)

    def start(self, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        if not self.targets_file.exists():
            self.set_agents(self.agents)
        argv = [
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        with (self.workdir / "prometheus.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready in {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, 10)

    def tail(self, lines: int = 20) -> str:
        log = self.workdir / "prometheus.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer, ValueError with Prometheus's error otherwise."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:  # 400/422: a bad query; the body says why
            body = json.load(error)
        if body.get("status") != "success":
            raise ValueError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (an empty list: nothing matched)."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result
