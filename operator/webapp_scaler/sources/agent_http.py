"""Scrape every VM's session agent over HTTP, concurrently, with a timeout and a body-size limit each.

The lessons of KEDA's metrics-api scaler are built in: every fetch is awaited (no early return), a
failed fetch is an error for that VM only, and nothing here averages, so "all failed" cannot turn into
+Inf or 0 — the engine sees missing data and HPA's rule applies (missing data never flips direction).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp

from webapp_scaler.sources.base import Reading, Target
from webapp_scaler.sources.prometheus_text import MetricError, session_count

MAX_BODY_BYTES = 1 << 20  # an agent's exposition is a few KiB; anything near a MiB is not an agent


class AgentHTTPSource:
    """Reads `webapp_active_sessions` (or the spec's metric) from each agent's /metrics."""

    def __init__(self, session: aiohttp.ClientSession, *, max_body: int = MAX_BODY_BYTES) -> None:
        self.session = session
        self.max_body = max_body

    async def read(self, targets: Sequence[Target], *, metric: str, scrape_timeout: float) -> list[Reading]:
        return list(await asyncio.gather(*(self._read_one(t, metric, scrape_timeout) for t in targets)))

    async def _read_one(self, target: Target, metric: str, scrape_timeout: float) -> Reading:
        started = time.monotonic()
        try:
            async with asyncio.timeout(scrape_timeout):
                text = await self._fetch(target.url)
            sessions = session_count(text, metric)
        except TimeoutError:
            error = f"timed out after {scrape_timeout:g} s"
            return Reading(target.vm, None, error, time.monotonic() - started)
        except (aiohttp.ClientError, OSError, MetricError, UnicodeDecodeError) as error:
            return Reading(target.vm, None, _describe(error), time.monotonic() - started)
        return Reading(target.vm, sessions, None, time.monotonic() - started)

    async def _fetch(self, url: str) -> str:
        # never follow a redirect: a VM must not point the operator at another address (its own loopback,
        # another tenant's agent); a 3xx is an error of that VM
        async with self.session.get(url, headers={"Accept": "text/plain"}, allow_redirects=False) as response:
            if response.status != 200:
                raise MetricError(f"HTTP {response.status} from {url}")
            if (response.content_length or 0) > self.max_body:
                raise MetricError(f"response larger than {self.max_body} bytes")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > self.max_body:
                    raise MetricError(f"response larger than {self.max_body} bytes")
            return body.decode("utf-8")


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, MetricError) else f"{type(error).__name__}: {text}"
