"""Benchmark: the proxy source against direct access to the sample shop, side by side in one run.

    python benchmarks/agent_proxy.py [--duration 10] [--rounds 3] [--connections 50 200] [--think-ms 100]

Starts the shop and an agent in front of it as real processes, logs users in, then runs `wrk`
(keep-alive, each connection a logged-in user hitting GET /cart) alternately against the shop and the
proxy, several rounds each, and reports medians of the rounds in two modes:

- saturation: every connection sends its next request as soon as the answer arrives. Gives the
  throughput ratio. Latency here is mostly queueing (connections / throughput), not per-request cost.
- paced: every connection waits `--think-ms` between requests, like users do, so neither side is
  saturated and the added latency is the proxy's own per-request cost.

It is a measurement, not a test: the numbers depend on the machine; the ratios are what to compare,
because both sides run on the same machine at the same time of the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webapp_scaler_dev.processes import free_port, stop

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    app_cpu_us: float = 0.0
    """CPU time of the shop per request (microseconds)."""
    proxy_cpu_us: float = 0.0
    """CPU time of the agent per request (microseconds; 0 for direct runs)."""


def parse_wrk(output: str) -> WrkResult:
    """Throughput and latency percentiles from `wrk --latency` output."""

    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if not match:
            raise ValueError(f"no {percent}% latency in wrk output")
        return float(match.group(1)) * _UNITS[match.group(2)]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    if not rps or not total:
        raise ValueError("no Requests/sec in wrk output")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkResult(
        float(rps.group(1)),
        latency("50"),
        latency("99"),
        errors + (int(non2xx.group(1)) if non2xx else 0),
        requests=int(total.group(1)),
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Each wrk connection gets its own logged-in user's cookie: the proxy does real per-session work.
_LUA = """
local cookies = {%(cookies)s}
local counter = 0
setup = function(thread) end
init = function(args)
  counter = math.random(#cookies)
end
%(delay)s
request = function()
  counter = counter %% #cookies + 1
  return wrk.format("GET", "/cart", {["Cookie"] = "JSESSIONID=" .. cookies[counter]})
end
"""


def _wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not become ready")


def _login(base: str, user: str) -> str:
    request = urllib.request.Request(
        f"{base}/login", data=json.dumps({"user": user}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        cookie = response.headers["Set-Cookie"]
    return str(cookie.split(";", 1)[0].split("=", 1)[1])


def _run_wrk(
    url: str, connections: int, duration: float, threads: int, script: Path, *, app: int, proxy: int | None = None
) -> WrkResult:
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(script), url,
    ]  # fmt: skip
    app_before = _cpu_seconds(app)
    proxy_before = _cpu_seconds(proxy) if proxy else 0.0
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    measured = parse_wrk(result.stdout)
    per_request = 1e6 / max(measured.requests, 1)
    return dataclasses.replace(
        measured,
        app_cpu_us=(_cpu_seconds(app) - app_before) * per_request,
        proxy_cpu_us=(_cpu_seconds(proxy) - proxy_before) * per_request if proxy else 0.0,
    )


def _median(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        statistics.median(r.requests_per_second for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        sum(r.requests for r in results),
        statistics.median(r.app_cpu_us for r in results),
        statistics.median(r.proxy_cpu_us for r in results),
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/agent_proxy.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3, help="alternating direct/proxy runs per concurrency")
    p.add_argument("--connections", type=int, nargs="+", default=[50, 200])
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--users", type=int, default=200, help="logged-in users whose cookies wrk sends")
    p.add_argument("--think-ms", type=float, default=100.0, help="pause between a connection's requests (paced mode)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop of shop and agent")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `bash hack/install-system-packages.sh` (Debian package wrk)", file=sys.stderr)
        return 2

    shop_port, proxy_port, metrics_port = free_port(), free_port(), free_port()
    python = sys.executable
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    loop = ["--loop", args.loop]
    shop = subprocess.Popen(
        [python, "-m", "webshop", "--listen", f"127.0.0.1:{shop_port}", *loop], env=env, stderr=subprocess.DEVNULL
    )
    agent_arguments = (
        f"--source proxy --listen 127.0.0.1:{proxy_port} --upstream http://127.0.0.1:{shop_port}"
        f" --metrics-listen 127.0.0.1:{metrics_port} --log-level warning"
    ).split()
    agent = subprocess.Popen([python, "-m", "session_agent", *agent_arguments, *loop], env=env)
    direct_url, proxy_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{proxy_port}"
    saturated: list[tuple[int, WrkResult, WrkResult]] = []
    paced: list[tuple[int, WrkResult, WrkResult]] = []
    scripts: list[Path] = []
    try:
        _wait_ready(f"{direct_url}/healthz")
        _wait_ready(f"http://127.0.0.1:{metrics_port}/readyz")
        cookies = ", ".join(f'"{_login(direct_url, f"user{i}")}"' for i in range(args.users))
        for delay in ("", f"delay = function() return {args.think_ms:g} end"):
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
                lua.write(_LUA % {"cookies": cookies, "delay": delay})
            scripts.append(Path(lua.name))
        flat_out, with_think = scripts
        pids = {"app": shop.pid}
        _run_wrk(direct_url, 10, 1, 1, flat_out, **pids)  # warm-up both paths
        _run_wrk(proxy_url, 10, 1, 1, flat_out, **pids, proxy=agent.pid)
        for script, rows in ((flat_out, saturated), (with_think, paced)):
            for connections in args.connections:
                direct: list[WrkResult] = []
                proxied: list[WrkResult] = []
                for _ in range(args.rounds):
                    direct.append(_run_wrk(direct_url, connections, args.duration, args.threads, script, **pids))
                    proxied.append(
                        _run_wrk(proxy_url, connections, args.duration, args.threads, script, **pids, proxy=agent.pid)
                    )
                rows.append((connections, _median(direct), _median(proxied)))
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        active = re.search(r'^webapp_active_sessions\{source="proxy"\} ([\d.]+)', metrics, re.MULTILINE)
    finally:
        for script in scripts:
            script.unlink()
        for process in (agent, shop):
            stop(process, 30)

    print(_header(args, active.group(1) if active else "?"))
    print("\nSaturation (no think time): throughput ratio\n")
    print(_table(saturated))
    print(f"\nPaced ({args.think_ms:g} ms think time per connection): added latency at the same load\n")
    print(_table(paced))
    return 0


def _header(args: argparse.Namespace, active: str) -> str:
    return (
        f"cpus: {os.cpu_count()}  loop: {args.loop}  wrk threads: {args.threads}  duration: {args.duration:g}s"
        f"  rounds: {args.rounds} (medians)  sessions counted by the agent: {active}"
    )


def _table(rows: list[tuple[int, WrkResult, WrkResult]]) -> str:
    lines = [
        "| clients | direct req/s | proxy req/s | ratio | direct p50 | proxy p50 | added p50 | direct p99 "
        "| proxy p99 | added p99 | CPU/request: app, proxy | errors direct/proxy |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for connections, d, x in rows:
        lines.append(
            f"| {connections} | {d.requests_per_second:,.0f} | {x.requests_per_second:,.0f} "
            f"| {x.requests_per_second / d.requests_per_second:.1%} | {d.p50_ms:.2f} ms | {x.p50_ms:.2f} ms "
            f"| {x.p50_ms - d.p50_ms:+.2f} ms | {d.p99_ms:.2f} ms | {x.p99_ms:.2f} ms "
            f"| {x.p99_ms - d.p99_ms:+.2f} ms | {x.app_cpu_us:.0f} µs, {x.proxy_cpu_us:.0f} µs "
            f"| {d.errors}/{x.errors} of {d.requests:,}/{x.requests:,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
