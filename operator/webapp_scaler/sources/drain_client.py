"""Tell a VM's agent to stop taking new sessions (POST) or to take them again (DELETE).

Both calls are idempotent on the agent, so the operator simply repeats them until they succeed; the
VM's `draining-since` annotation, not this call, is the record that a drain is under way.
"""

from __future__ import annotations

import asyncio

import aiohttp

from webapp_scaler.sources.base import DrainError

__all__ = ["AgentDrainClient", "DrainError"]


class AgentDrainClient:
    """`base.DrainControl` over HTTP, sharing the operator's one client session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def set_draining(self, url: str, *, draining: bool, token: str | None, request_timeout: float) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        method = "POST" if draining else "DELETE"
        try:
            # never follow a redirect: the bearer token goes to the VM's own address and nowhere else
            request = self.session.request(method, url, headers=headers, allow_redirects=False)
            async with asyncio.timeout(request_timeout), request as response:
                if response.status >= 300:
                    raise DrainError(f"{method} {url}: HTTP {response.status} {(await response.text())[:200]}")
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise DrainError(f"{method} {url}: {type(error).__name__}: {error}") from error
