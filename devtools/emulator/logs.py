"""Structured logs: one JSON object per line on stderr, so a test or the demo can grep transitions.

The format is the session agent's (one formatter for the whole project); only the noise filters differ.
"""

from __future__ import annotations

import logging
from typing import Any

from session_agent.logs import configure as configure_json


def configure(level: str) -> None:
    configure_json(level)
    # the client logs every retried watch at WARNING; our own messages say what matters
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)


def fields(**values: Any) -> dict[str, Any]:
    """`log.info("...", extra=fields(vm=..., phase=...))`."""
    return {"fields": values}
