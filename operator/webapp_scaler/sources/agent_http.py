"""Scrape every VM's session agent over HTTP, concurrently, each within one total deadline and a body-size limit.

The lessons of KEDA's metrics-api scaler are built in: every fetch is awaited (no early return), a
failed fetch is an error for that VM only, and nothing here averages, so "all failed" cannot turn into
+Inf or 0 — the engine sees missing data and holds (missing data never scales in).

A guest controls its agent's answer, so every way an answer can be wrong ends as an invalid reading of
that VM with a message a person can act on, never as an exception out of the round:

- the deadline covers connect, headers *and* body (`asyncio.timeout` around the whole fetch), so an
  agent trickling its body a byte at a time (slow loris) fails at the deadline, where a per-read
  timeout would wait forever; Prometheus does the same (`scrape/scrape.go`: the scrape context carries
  `scrape_timeout`);
- at most `max_body` bytes (1 MiB) are read, counted after decompression, then the reading fails, as
  Prometheus's `body_size_limit` does (`errBodySizeLimit` in `scrape/scrape.go`);
- a redirect is never followed and any status but 200 is an error: a VM must not point the operator at
  another address (its loopback, another tenant's agent);
- an HTML page is named as such (usually a web server on the agent's port), everything else that is
  not a valid count is `prometheus_text.MetricError` (bounds, duplicated series, NaN, …).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import aiohttp

from webapp_scaler.sources.base import Reading, Target
from webapp_scaler.sources.prometheus_text import MetricError, parse_body

SCRAPE_CONCURRENCY = 256
"""Scrapes in flight at once, over every WebAppScaling: a thousand objects' rounds falling together must
not open ten thousand connections at once, nor time out while they wait their turn."""
MAX_BODY_BYTES = 1 << 20  # an agent's exposition is a few KiB; anything near a MiB is not an agent
_CHUNK = 64 * 1024


class AgentHTTPSource:
    """Reads `webapp_active_sessions` (or the spec's metric) from each agent's /metrics."""

    def __init__(
        self, session: aiohttp.ClientSession, *, max_body: int = MAX_BODY_BYTES, concurrency: int = SCRAPE_CONCURRENCY
    ) -> None:
        self.session = session
        self.max_body = max_body
        self._slots = asyncio.Semaphore(concurrency)

    async def read(self, targets: Sequence[Target], *, metric: str, scrape_timeout: float) -> list[Reading]:
        return list(await asyncio.gather(*(self._read_one(t, metric, scrape_timeout) for t in targets)))

    async def _read_one(self, target: Target, metric: str, scrape_timeout: float) -> Reading:
        started = time.monotonic()
        agent = f"agent {_address(target.url)}"
        try:
            async with self._slots:  # the deadline starts once a slot is free: queueing is not the agent's fault
                started = time.monotonic()
                async with asyncio.timeout(scrape_timeout):
                    body = await self._fetch(target.url)
            sessions = parse_body(body, metric)
        except TimeoutError:
            error = f"{agent}: timed out after {scrape_timeout:g} s (the whole answer, body included)"
            return Reading(target.vm, None, error, time.monotonic() - started, problem="timeout")
        except MetricError as error:
            return Reading(target.vm, None, f"{agent}: {error}", time.monotonic() - started, problem=error.kind)
        except (aiohttp.ClientError, OSError) as error:
            message = f"{agent}: unreachable: {type(error).__name__}: {str(error) or type(error).__name__}"
            return Reading(target.vm, None, message, time.monotonic() - started, problem="unreachable")
        return Reading(target.vm, sessions, None, time.monotonic() - started)

    async def _fetch(self, url: str) -> bytes:
        # never follow a redirect: a VM must not point the operator at another address (its own loopback,
        # another tenant's agent); a 3xx is an error of that VM
        async with self.session.get(url, headers={"Accept": "text/plain"}, allow_redirects=False) as response:
            if 300 <= response.status < 400:
                where = response.headers.get("Location", "")[:200]
                raise MetricError(f"HTTP {response.status} redirect to {where!r} from {url}: not followed", "redirect")
            if response.status != 200:
                raise MetricError(f"HTTP {response.status} from {url}", f"http-{response.status}")
            if (response.content_length or 0) > self.max_body:
                raise MetricError(
                    f"response larger than {self.max_body} bytes (Content-Length {response.content_length})",
                    "too-large",
                )
            if response.content_type == "text/html":
                raise MetricError(
                    f"answered an HTML page (Content-Type text/html), not Prometheus text: is {url} the agent?",
                    "html",
                )
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > self.max_body:
                    raise MetricError(f"response larger than {self.max_body} bytes: not read further", "too-large")
            return bytes(body)


def _address(url: str) -> str:
    """host:port of the agent, as a person looks it up (the VM's IP)."""
    parts = urlsplit(url)
    return parts.netloc or url
