"""Tell a VM's agent to stop taking new sessions (POST) or to take them again (DELETE).

Both calls are idempotent on the agent, so the operator simply repeats them until they succeed; the
VM's `draining-since` annotation, not this call, is the record that a drain is under way.
"""

from __future__ import annotations

import asyncio

import aiohttp


class DrainError(RuntimeError):
    pass


async def set_draining(
    session: aiohttp.ClientSession, url: str, *, draining: bool, token: str | None, request_timeout: float
) -> int | None:
    """Start (or cancel) the drain; returns the agent's remaining active sessions when it reports them."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    method = "POST" if draining else "DELETE"
    try:
        request = session.request(method, url, headers=headers)
        async with asyncio.timeout(request_timeout), request as response:
            if response.status >= 300:
                raise DrainError(f"{method} {url}: HTTP {response.status} {(await response.text())[:200]}")
            report = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
        raise DrainError(f"{method} {url}: {type(error).__name__}: {error}") from error
    remaining = report.get("active_sessions") if isinstance(report, dict) else None
    return int(remaining) if isinstance(remaining, int | float) else None
