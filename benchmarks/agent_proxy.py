"""Benchmark: the agent's proxy against direct access to the sample shop and against HAProxy, in one run.

    python benchmarks/agent_proxy.py [--duration 10] [--rounds 4] [--connections 50 200] [--think-ms 100]
        [--json OUT.json] [--plot OUT.png] [--profile OUT.txt]

Starts the shop, a session agent (`--source proxy`) and HAProxy (Debian's `haproxy`, a plain HTTP
reverse proxy: keep-alive to the shop, one server, `option forwardfor` like the agent's
X-Forwarded-For, no stickiness) in front of the same shop as real processes. Users log in through the
agent, so it holds every session; then `wrk` (keep-alive, each connection hitting GET /cart with one of
the users' session cookies) runs against four variants, interleaved round by round (in a balanced
order, see ORDERS), with the very same requests and cookies:

- direct: the shop itself;
- agent: the agent in front of it, session tracking on;
- haproxy: HAProxy in front of it;
- agent-draining: the same agent draining in mode RefuseNewSessions, where every request carries a
  session the agent holds, so every one is checked and served (the drain check's cost).

and reports medians of the rounds in two modes:

- saturation: every connection sends its next request as soon as the answer arrives. Gives the
  throughput ratios. Latency here is mostly queueing (connections / throughput), not per-request cost.
- paced: every connection waits `--think-ms` between requests, like users do, so no side is
  saturated and the added latency is each proxy's own per-request cost.

It is a measurement, not a test: the numbers depend on the machine; the ratios are what to compare,
because every variant runs on the same machine in the same minutes of the run. `--profile` runs the
agent under cProfile instead (slower: for where the time goes, not for the figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webapp_scaler_dev.processes import die_with_parent, free_port, stop

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("direct", "agent", "haproxy", "agent-draining")
MODES = ("saturation", "paced")
GOAL_AGENT_OVER_HAPROXY = 0.9
GOAL_ADDED_P50_MS = 1.0

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}

ORDERS = ((0, 1, 3, 2), (1, 2, 0, 3), (2, 3, 1, 0), (3, 0, 2, 1))
"""The order of the variants in round r is ORDERS[r % 4], a Williams square: over 4 rounds each variant
runs once in each position and directly after each other variant exactly once, so neither a slot in
the round nor what ran just before (a warm shop, a burst of load on the machine) favours one variant."""


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Socket errors (connect, read, write, timeout) and non-2xx/3xx answers."""
    requests: int = 0
    timeouts: int = 0
    """Of the errors: requests wrk gave up on after its 2 s timeout."""
    non_2xx: int = 0
    """Of the errors: answers with another status (a proxy's 502/503/504, ...)."""
    app_cpu_us: float = 0.0
    """CPU time of the shop per request (microseconds)."""
    proxy_cpu_us: float = 0.0
    """CPU time of the proxy (agent or HAProxy) per request (microseconds; 0 for direct runs)."""
    proxy_system_cpu_us: float = 0.0
    """The part of proxy_cpu_us spent in the kernel (system time: syscalls, loopback TCP)."""
    others_cpu_percent: float = 0.0
    """CPU the rest of the machine used during the run (not the shop, the proxies or wrk), in % of all cpus."""
    steal_percent: float = 0.0
    """CPU time the hypervisor gave to other guests during the run, in % of all cpus."""


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
    timeouts = re.search(r"timeout (\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    non_2xx = int(non2xx.group(1)) if non2xx else 0
    return WrkResult(
        float(rps.group(1)),
        latency("50"),
        latency("99"),
        errors + non_2xx,
        requests=int(total.group(1)),
        timeouts=int(timeouts.group(1)) if timeouts else 0,
        non_2xx=non_2xx,
    )


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system, and system CPU time of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick


# Each wrk connection cycles through the logged-in users' cookies: the proxy does real per-session work.
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


def find_haproxy() -> str | None:
    """Debian installs haproxy in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin:/usr/local/sbin")


def haproxy_config(listen_port: int, shop_port: int, threads: int | None) -> str:
    """A plain HTTP reverse proxy: one frontend, one backend server (the shop), keep-alive both ways."""
    lines = [
        "global",
        "    maxconn 4096",
        *([f"    nbthread {threads}"] if threads else []),
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    option forwardfor",
        "    timeout connect 5s",
        "    timeout client 75s",
        "    timeout server 60s",
        "    timeout http-keep-alive 75s",
        "",
        "frontend web",
        f"    bind 127.0.0.1:{listen_port}",
        "    default_backend shop",
        "",
        "backend shop",
        f"    server shop 127.0.0.1:{shop_port}",
        "",
    ]
    return "\n".join(lines)


def _wait_ready(url: str, timeout: float = 20.0, process: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited with {process.returncode}")
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


def _drain(metrics_url: str, token: str, method: str, mode: str | None = None) -> dict[str, Any]:
    body = json.dumps({"mode": mode}).encode() if mode else None
    request = urllib.request.Request(
        f"{metrics_url}/drain",
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        report: dict[str, Any] = json.loads(response.read())
    return report


def _metric(metrics_url: str, name: str, **labels: str) -> float:
    """One sample of the agent's /metrics (0 when not exported)."""
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}\{{[^}}]*{re.escape(selector)}[^}}]*\}} ([\d.e+-]+)$"
    if not labels:
        pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([\d.e+-]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _machine_seconds() -> tuple[float, float, float]:
    """Busy, stolen and total CPU seconds of the whole machine (all cpus), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split()[1:9]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields)
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / tick, steal / tick, (busy + idle + iowait + steal) / tick


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children only: here, the wrk runs
    return usage.ru_utime + usage.ru_stime


def _run_wrk(
    url: str,
    connections: int,
    duration: int,
    threads: int,
    script: Path,
    *,
    app: int,
    proxy: int | None = None,
    ours: Sequence[int] = (),
) -> WrkResult:
    """One wrk run; `ours` are every process of the benchmark (to tell the machine's other load apart)."""
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url,
    ]  # fmt: skip
    app_before = _cpu_seconds(app)[0]
    proxy_before = _cpu_seconds(proxy) if proxy else (0.0, 0.0)
    ours_before = sum(_cpu_seconds(pid)[0] for pid in ours) + _children_seconds()
    machine_before = _machine_seconds()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    machine_after = _machine_seconds()
    ours_after = sum(_cpu_seconds(pid)[0] for pid in ours) + _children_seconds()
    measured = parse_wrk(result.stdout)
    per_request = 1e6 / max(measured.requests, 1)
    proxy_after = _cpu_seconds(proxy) if proxy else (0.0, 0.0)
    busy, steal, total = (after - before for after, before in zip(machine_after, machine_before, strict=True))
    others = max(0.0, busy - (ours_after - ours_before)) if ours else 0.0
    return dataclasses.replace(
        measured,
        app_cpu_us=(_cpu_seconds(app)[0] - app_before) * per_request,
        proxy_cpu_us=(proxy_after[0] - proxy_before[0]) * per_request,
        proxy_system_cpu_us=(proxy_after[1] - proxy_before[1]) * per_request,
        others_cpu_percent=100 * others / total if total > 0 else 0.0,
        steal_percent=100 * steal / total if total > 0 else 0.0,
    )


def _figures(results: list[WrkResult]) -> dict[str, Any]:
    """The medians of the rounds, and every round."""
    return {**dataclasses.asdict(_median(results)), "rounds": [dataclasses.asdict(r) for r in results]}


def _median(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        statistics.median(r.requests_per_second for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        sum(r.requests for r in results),
        sum(r.timeouts for r in results),
        sum(r.non_2xx for r in results),
        statistics.median(r.app_cpu_us for r in results),
        statistics.median(r.proxy_cpu_us for r in results),
        statistics.median(r.proxy_system_cpu_us for r in results),
        statistics.median(r.others_cpu_percent for r in results),
        statistics.median(r.steal_percent for r in results),
    )


@dataclass
class Variant:
    name: str
    url: str
    proxy_pid: int | None
    before: Callable[[], None] = lambda: None
    after: Callable[[], None] = lambda: None


def _paired(variants: dict[str, Any], a: str, b: str, key: str, ratio: bool) -> dict[str, Any]:
    """a / b (or a − b) round by round: the runs of one round are seconds apart, so each pair saw the
    same machine, and the median of the pairs resists load that comes and goes on a shared machine."""
    pairs = [
        x[key] / y[key] if ratio else x[key] - y[key]
        for x, y in zip(variants[a]["rounds"], variants[b]["rounds"], strict=True)
    ]
    return {"median": statistics.median(pairs), "min": min(pairs), "max": max(pairs), "rounds": pairs}


def summarize(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The ratios the issue asks for, per concurrency: saturated throughput ratios, paced added p50.

    The plain figures compare the variants' medians; `paired` holds the same comparisons round by round.
    """
    summary = []
    for saturated, paced in zip(rows["saturation"], rows["paced"], strict=True):
        s, p = saturated["variants"], paced["variants"]
        rps = {name: float(s[name]["requests_per_second"]) for name in VARIANTS}.__getitem__
        p50 = {name: float(p[name]["p50_ms"]) for name in VARIANTS}.__getitem__
        summary.append(
            {
                "connections": saturated["connections"],
                "throughput_agent_over_haproxy": rps("agent") / rps("haproxy"),
                "throughput_agent_over_direct": rps("agent") / rps("direct"),
                "throughput_haproxy_over_direct": rps("haproxy") / rps("direct"),
                "throughput_draining_over_agent": rps("agent-draining") / rps("agent"),
                "paced_added_p50_ms_agent": p50("agent") - p50("direct"),
                "paced_added_p50_ms_haproxy": p50("haproxy") - p50("direct"),
                "paced_added_p50_ms_agent_draining": p50("agent-draining") - p50("direct"),
                "paced_p50_ms_draining_minus_agent": p50("agent-draining") - p50("agent"),
                "paced_p50_draining_over_agent": p50("agent-draining") / p50("agent"),
                "cpu_us_per_request": {
                    "app": float(s["direct"]["app_cpu_us"]),
                    **{name: float(s[name]["proxy_cpu_us"]) for name in VARIANTS[1:]},
                },
                "system_cpu_us_per_request": {name: float(s[name]["proxy_system_cpu_us"]) for name in VARIANTS[1:]},
                "paired": {
                    "throughput_agent_over_haproxy": _paired(s, "agent", "haproxy", "requests_per_second", True),
                    "throughput_agent_over_direct": _paired(s, "agent", "direct", "requests_per_second", True),
                    "throughput_haproxy_over_direct": _paired(s, "haproxy", "direct", "requests_per_second", True),
                    "throughput_draining_over_agent": _paired(
                        s, "agent-draining", "agent", "requests_per_second", True
                    ),
                    "paced_added_p50_ms_agent": _paired(p, "agent", "direct", "p50_ms", False),
                    "paced_added_p50_ms_haproxy": _paired(p, "haproxy", "direct", "p50_ms", False),
                    "paced_p50_ms_draining_minus_agent": _paired(p, "agent-draining", "agent", "p50_ms", False),
                },
            }
        )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/agent_proxy.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (whole seconds: wrk's unit)")
    p.add_argument(
        "--rounds", type=int, default=4, help="interleaved runs of every variant per concurrency (a multiple of 4)"
    )
    p.add_argument("--connections", type=int, nargs="+", default=[50, 200])
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--users", type=int, default=200, help="logged-in users whose cookies wrk sends")
    p.add_argument("--think-ms", type=float, default=100.0, help="pause between a connection's requests (paced mode)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop of shop and agent")
    p.add_argument("--haproxy-threads", type=int, default=None, help="HAProxy nbthread (default: HAProxy's own)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per variant (0: none)")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of the figures here")
    p.add_argument("--profile", type=Path, default=None, help="run the agent under cProfile; top functions here")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `bash hack/install-system-packages.sh` (Debian package wrk)", file=sys.stderr)
        return 2
    haproxy_binary = find_haproxy()
    if haproxy_binary is None:
        print(
            "haproxy is not installed: run `bash hack/install-system-packages.sh` (Debian package haproxy)",
            file=sys.stderr,
        )
        return 2

    shop_port, proxy_port, metrics_port, haproxy_port = free_port(), free_port(), free_port(), free_port()
    python = sys.executable
    token = secrets.token_hex(16)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    agent_env = {**env, "SESSION_AGENT_DRAIN_TOKEN": token}
    loop = ["--loop", args.loop]
    workdir = Path(tempfile.mkdtemp(prefix="agent-proxy-bench-"))
    haproxy_cfg = workdir / "haproxy.cfg"
    haproxy_cfg.write_text(haproxy_config(haproxy_port, shop_port, args.haproxy_threads))
    check = subprocess.run([haproxy_binary, "-c", "-q", "-f", str(haproxy_cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        print(f"haproxy rejected the configuration: {check.stderr.strip()}", file=sys.stderr)
        return 2
    haproxy_version = subprocess.run([haproxy_binary, "-v"], capture_output=True, text=True).stdout.split("\n")[0]

    processes: list[subprocess.Popen[Any]] = []

    def spawn(command: list[str], process_env: dict[str, str], **kwargs: Any) -> subprocess.Popen[Any]:
        process = subprocess.Popen(command, env=process_env, preexec_fn=die_with_parent(), **kwargs)
        processes.append(process)
        return process

    shop = spawn(
        [python, "-m", "webshop", "--listen", f"127.0.0.1:{shop_port}", "--session-timeout", "86400", *loop],
        env,
        stderr=subprocess.DEVNULL,
    )
    agent_arguments = (
        f"--source proxy --listen 127.0.0.1:{proxy_port} --upstream http://127.0.0.1:{shop_port}"
        f" --metrics-listen 127.0.0.1:{metrics_port} --log-level warning --idle-timeout 86400"
    ).split()
    profile_raw = workdir / "agent.prof"
    profiler = ["-m", "cProfile", "-o", str(profile_raw)] if args.profile else []
    agent = spawn([python, *profiler, "-m", "session_agent", *agent_arguments, *loop], agent_env)
    haproxy_log = workdir / "haproxy.log"
    with haproxy_log.open("wb") as log:
        haproxy = spawn(
            [haproxy_binary, "-db", "-f", str(haproxy_cfg)],
            env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    direct_url, proxy_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{proxy_port}"
    haproxy_url, metrics_url = f"http://127.0.0.1:{haproxy_port}", f"http://127.0.0.1:{metrics_port}"
    drain_reports: list[dict[str, Any]] = []

    def start_drain() -> None:
        report = _drain(metrics_url, token, "POST", "RefuseNewSessions")
        if not (report["draining"] and report["mode"] == "RefuseNewSessions"):
            raise RuntimeError(f"the agent did not drain: {report}")
        with urllib.request.urlopen(f"{metrics_url}/readyz", timeout=5) as response:
            if response.status != 200:
                raise RuntimeError("the agent is not ready while draining in RefuseNewSessions")
        drain_reports.append(report)

    def stop_drain() -> None:
        if _drain(metrics_url, token, "DELETE")["draining"]:
            raise RuntimeError("the agent is still draining")

    rows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    scripts: list[Path] = []
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        _wait_ready(f"{direct_url}/healthz", process=shop)
        _wait_ready(f"{metrics_url}/readyz", process=agent)
        _wait_ready(f"{haproxy_url}/healthz", process=haproxy)
        # Log in through the agent: it learns every session from the Set-Cookie, so all of them are held.
        cookies = ", ".join(f'"{_login(proxy_url, f"user{i}")}"' for i in range(args.users))
        for delay in ("", f"delay = function() return {args.think_ms:g} end"):
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, dir=workdir) as lua:
                lua.write(_LUA % {"cookies": cookies, "delay": delay})
            scripts.append(Path(lua.name))
        variants = [
            Variant("direct", direct_url, None),
            Variant("agent", proxy_url, agent.pid),
            Variant("haproxy", haproxy_url, haproxy.pid),
            Variant("agent-draining", proxy_url, agent.pid, before=start_drain, after=stop_drain),
        ]
        assert tuple(v.name for v in variants) == VARIANTS
        pids: dict[str, Any] = {"app": shop.pid, "ours": [os.getpid(), *(p.pid for p in processes)]}
        if args.warmup > 0:
            for variant in variants:
                variant.before()
                try:
                    _run_wrk(variant.url, 10, args.warmup, 1, scripts[0], **pids, proxy=variant.proxy_pid)
                finally:
                    variant.after()
        for mode, script in zip(MODES, scripts, strict=True):
            for connections in args.connections:
                runs: dict[str, list[WrkResult]] = {v.name: [] for v in variants}
                for round_number in range(args.rounds):
                    for variant in (variants[i] for i in ORDERS[round_number % len(ORDERS)]):
                        variant.before()
                        try:
                            result = _run_wrk(
                                variant.url, connections, args.duration, args.threads, script,
                                **pids, proxy=variant.proxy_pid,
                            )  # fmt: skip
                        finally:
                            variant.after()
                        runs[variant.name].append(result)
                rows[mode].append(
                    {
                        "connections": connections,
                        "variants": {name: _figures(results) for name, results in runs.items()},
                    }
                )
        active = _metric(metrics_url, "webapp_active_sessions", source="proxy")
        rejected_draining = _metric(metrics_url, "webapp_proxy_rejected_total", reason="draining")
        agent_requests = _metric(metrics_url, "webapp_requests_total")
    finally:
        for process in reversed(processes):
            stop(process, 30)
        for script in scripts:
            script.unlink(missing_ok=True)
        if sys.exc_info()[0] is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - started

    haproxy_stderr = haproxy_log.read_text(errors="replace")
    summary = summarize(rows)
    figures: dict[str, Any] = {
        "command": "python benchmarks/agent_proxy.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "commit": _commit(),
        "cpus": os.cpu_count(),
        "loop": args.loop,
        "haproxy": haproxy_version,
        "haproxy_threads": args.haproxy_threads,
        "wrk_threads": args.threads,
        "duration_seconds": args.duration,
        "rounds": args.rounds,
        "users": args.users,
        "think_ms": args.think_ms,
        "profiled": args.profile is not None,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "wall_seconds": round(wall, 1),
        "variants": list(VARIANTS),
        "agent": {
            "active_sessions": active,
            "requests": agent_requests,
            "rejected_draining": rejected_draining,
            "drains": len(drain_reports),
        },
        "goals": {"agent_over_haproxy_throughput": GOAL_AGENT_OVER_HAPROXY, "added_p50_ms_paced": GOAL_ADDED_P50_MS},
        "saturation": rows["saturation"],
        "paced": rows["paced"],
        "summary": summary,
        "machine": _machine_load(rows),
    }
    if haproxy_stderr.strip():
        figures["haproxy_stderr"] = haproxy_stderr[-2000:]
    print(_header(figures))
    print("\nSaturation (no think time): throughput\n")
    print(_table(rows["saturation"], saturated=True))
    print(f"\nPaced ({args.think_ms:g} ms think time per connection): latency at the same load\n")
    print(_table(rows["paced"], saturated=False))
    print("\nRatios\n")
    print(_summary_table(summary))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.plot is not None:
        _plot(figures, args.plot)
    if args.profile is not None:
        _write_profile(profile_raw, args.profile)
        print(f"\nprofile of the agent (cProfile, cumulative and own time): {args.profile}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True
        )  # "-dirty": the working tree had uncommitted changes
    except OSError:
        return None
    return out.stdout.strip() or None


def _machine_load(rows: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    runs = [r for mode in MODES for row in rows[mode] for v in row["variants"].values() for r in v["rounds"]]
    others = [r["others_cpu_percent"] for r in runs]
    steal = [r["steal_percent"] for r in runs]
    return {
        "others_cpu_percent_median": statistics.median(others),
        "others_cpu_percent_max": max(others),
        "steal_percent_median": statistics.median(steal),
        "steal_percent_max": max(steal),
    }


def _header(figures: dict[str, Any]) -> str:
    load = "–".join(f"{x:.1f}" for x in (figures["load_average_before"][0], figures["load_average_after"][0]))
    agent, machine = figures["agent"], figures["machine"]
    return (
        f"cpus: {figures['cpus']}  loop: {figures['loop']}  {figures['haproxy']}"
        f" (nbthread {figures['haproxy_threads'] or 'default'})  wrk threads: {figures['wrk_threads']}"
        f"  duration: {figures['duration_seconds']}s  rounds: {figures['rounds']} (medians)  load average: {load}"
        f"\nsessions held by the agent: {agent['active_sessions']:.0f}"
        f"  drain 503s during agent-draining runs: {agent['rejected_draining']:.0f}"
        f"\nother load on the machine during the runs (not the benchmark's processes), % of all cpus:"
        f" median {machine['others_cpu_percent_median']:.0f}%, max {machine['others_cpu_percent_max']:.0f}%;"
        f" stolen by the hypervisor: median {machine['steal_percent_median']:.1f}%,"
        f" max {machine['steal_percent_max']:.1f}%"
    )


def _table(rows: list[dict[str, Any]], *, saturated: bool) -> str:
    lines = [
        "| clients | variant | req/s | vs direct | p50 | added p50 | p99 | added p99 "
        "| CPU/request: app, proxy (of it kernel) | errors | other load, steal |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        d = row["variants"]["direct"]
        for name in VARIANTS:
            x = row["variants"][name]
            ratio = f"{x['requests_per_second'] / d['requests_per_second']:.1%}" if name != "direct" else ""
            added = f"{x['p50_ms'] - d['p50_ms']:+.2f} ms" if name != "direct" else ""
            added99 = f"{x['p99_ms'] - d['p99_ms']:+.2f} ms" if name != "direct" else ""
            proxy_cpu = f", {x['proxy_cpu_us']:.0f} µs ({x['proxy_system_cpu_us']:.0f} µs)"
            cpu = f"{x['app_cpu_us']:.0f} µs" + (proxy_cpu if name != "direct" else "")
            p50 = f"**{x['p50_ms']:.2f} ms**" if not saturated and name != "direct" else f"{x['p50_ms']:.2f} ms"
            lines.append(
                f"| {row['connections']} | {name} | {x['requests_per_second']:,.0f} | {ratio} | {p50} | {added} "
                f"| {x['p99_ms']:.2f} ms | {added99} | {cpu} | {_errors(x)} "
                f"| {x['others_cpu_percent']:.0f}%, {x['steal_percent']:.1f}% |"
            )
    return "\n".join(lines)


def _errors(x: dict[str, Any]) -> str:
    text = f"{x['errors']} of {x['requests']:,}"
    if x["errors"]:
        text += f" ({x['timeouts']} timeouts, {x['non_2xx']} non-2xx)"
    return text


def _summary_table(summary: list[dict[str, Any]]) -> str:
    """Each cell: the comparison of the medians, then the median of the round-by-round pairs and their range."""
    columns = (
        ("throughput_agent_over_haproxy", "agent / haproxy (goal ≥ 0.90)", ".2f", ""),
        ("throughput_agent_over_direct", "agent / direct", ".2f", ""),
        ("throughput_haproxy_over_direct", "haproxy / direct", ".2f", ""),
        ("throughput_draining_over_agent", "draining / agent", ".2f", ""),
        ("paced_added_p50_ms_agent", "added p50 paced: agent (goal < 1 ms)", "+.2f", " ms"),
        ("paced_added_p50_ms_haproxy", "added p50 paced: haproxy", "+.2f", " ms"),
        ("paced_p50_ms_draining_minus_agent", "p50 paced: draining − agent", "+.2f", " ms"),
    )
    lines = [
        "| clients | " + " | ".join(title for _, title, _, _ in columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for s in summary:
        cells = []
        for key, _, spec, unit in columns:
            pair = s["paired"][key]
            cells.append(
                f"{s[key]:{spec}}{unit}; pairs {pair['median']:{spec}} [{pair['min']:{spec}}, {pair['max']:{spec}}]"
            )
        lines.append(f"| {s['connections']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(figures: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"direct": "#4c72b0", "agent": "#dd8452", "haproxy": "#55a868", "agent-draining": "#c44e52"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.2
    for panel, mode, key, label in (
        (left, "saturation", "requests_per_second", "requests/s (saturation)"),
        (right, "paced", "p50_ms", f"p50 latency, ms (paced, {figures['think_ms']:g} ms think time)"),
    ):
        rows = figures[mode]
        for i, name in enumerate(VARIANTS):
            xs = [j + (i - 1.5) * width for j in range(len(rows))]
            ys = [row["variants"][name][key] for row in rows]
            panel.bar(xs, ys, width, label=name, color=colors[name])
        panel.set_xticks(range(len(rows)), [f"{row['connections']} clients" for row in rows])
        panel.set_ylabel(label)
        panel.grid(axis="y", alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle(
        f"session agent vs HAProxy vs direct, {figures['cpus']} cpus, medians of {figures['rounds']} rounds"
        f" (commit {figures['commit']})",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_profile(raw: Path, out: Path) -> None:
    import io
    import pstats

    if not raw.exists():
        out.write_text("the agent wrote no profile (did it exit cleanly?)\n")
        return
    buffer = io.StringIO()
    stats = pstats.Stats(str(raw), stream=buffer)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(buffer.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
