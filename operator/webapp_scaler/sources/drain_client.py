"""Tell a VM's agent to stop taking new sessions (POST, with the drain mode) or to take them again (DELETE).

Both calls are idempotent on the agent, so the operator simply repeats them until they succeed; the
VM's `draining-since` annotation, not this call, is the record that a drain is under way. The agent's
contract (docs/session-agent.md): `POST /drain {"mode": ...}` answers with the `mode` it drains in and
the `modes` it supports, or 409 with `error` and `modes` when its source cannot do the mode asked.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from webapp_scaler.sources.base import DrainError, DrainModeUnsupported
from webapp_scaler.webappscaling import DrainMode

__all__ = ["AgentDrainClient", "DrainError", "DrainModeUnsupported"]

MAX_ANSWER_BYTES = 64 * 1024  # an agent's answer is a small JSON object; a guest cannot make us read more


class AgentDrainClient:
    """`base.DrainControl` over HTTP, sharing the operator's one client session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def set_draining(
        self, url: str, *, draining: bool, mode: DrainMode, token: str | None, request_timeout: float
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        method = "POST" if draining else "DELETE"
        body: dict[str, Any] = {"json": {"mode": mode}} if draining else {}
        try:
            # never follow a redirect: the bearer token goes to the VM's own address and nowhere else
            request = self.session.request(method, url, headers=headers, allow_redirects=False, **body)
            async with asyncio.timeout(request_timeout), request as response:
                status = response.status
                text = await _bounded_text(response)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise DrainError(f"{method} {url}: {type(error).__name__}: {error}") from error
        answer = _json(text)
        if draining and status == 409:
            modes = tuple(str(m) for m in answer.get("modes") or () if isinstance(m, str))
            why = str(answer.get("error") or text)[:300]
            supported = f" (it supports {', '.join(modes)})" if modes else ""
            raise DrainModeUnsupported(f"the agent refused drain mode {mode}{supported}: {why}", modes)
        if status >= 300:
            raise DrainError(f"{method} {url}: HTTP {status} {text[:200]}")
        reported = answer.get("mode")
        if draining and reported is not None and reported != mode:
            # an agent older than drain modes says nothing; one that says another mode broke the contract
            raise DrainError(f"{method} {url}: asked to drain in mode {mode}, the agent answered mode {reported!r}")


async def _bounded_text(response: aiohttp.ClientResponse) -> str:
    """The answer's first MAX_ANSWER_BYTES: what follows is not read."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) >= MAX_ANSWER_BYTES:
            break
    return bytes(body[:MAX_ANSWER_BYTES]).decode(errors="replace")


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
