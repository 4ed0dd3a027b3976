"""`webapp-scaler operator`: run the kopf operator with the handlers of `webapp_scaler.handlers`."""

from __future__ import annotations

import argparse
import asyncio
import logging

import kopf
from prometheus_client import start_http_server

from webapp_scaler import settings


def configure(parser: argparse.ArgumentParser) -> None:
    settings.configure(parser)


def run(args: argparse.Namespace) -> int:
    config = settings.from_args(args)
    kopf.configure(
        verbose=config.verbose,
        log_format=kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if config.metrics_port:
        start_http_server(config.metrics_port, addr=config.metrics_address)
    import webapp_scaler.handlers  # noqa: F401  (registers the handlers)

    asyncio.run(
        kopf.operator(
            standalone=config.standalone,
            peering_name=None if config.standalone else config.peering,
            namespaces=list(config.namespaces),
            clusterwide=not config.namespaces,
            liveness_endpoint=config.liveness_endpoint,
            memo=kopf.Memo(config=config),
        )
    )
    return 0
