"""`webapp-scaler operator`: run the kopf operator with the handlers of `webapp_scaler.handlers`, as the
elected leader of its replicas (the default) or standalone.

How leadership is wired (the choice, and why): the process waits for the Lease *before* kopf's operator
loop starts, renews it in a task beside kopf, and exits non-zero at once (`os._exit`, no clean-up that
could still act) when it loses it; the Deployment restarts it as a standby. Gating every reconcile round
on leadership instead would keep kopf running in every replica: each would still add finalizers, patch
kopf's annotations and post Events on every WebAppScaling, and a round already past its gate would
finish after the lease was gone. A process that does not run kopf at all cannot act; that is the
guarantee, as client-go's controllers give it by exiting on `OnStoppedLeading`. While it waits, a
standby serves the liveness endpoint itself (kopf's is not running yet), so the probe does not kill it.

kopf peering is not used: its peering objects need CRDs and rights of their own, replicas of equal
priority all pause, and the Lease does the job (docs/operator.md, "Leader election").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import kopf
from prometheus_client import start_http_server

from webapp_scaler import leader, settings
from webapp_scaler.k8s import Kube

logger = logging.getLogger("webapp_scaler.runner")

EXIT_LOST_LEADERSHIP = 3  # non-zero: the Deployment restarts the replica, which then waits as a standby


def configure(parser: argparse.ArgumentParser) -> None:
    settings.configure(parser)


def run(args: argparse.Namespace) -> int:
    config = settings.from_args(args)
    try:
        timings = leader.Timings(config.lease_duration, config.renew_deadline, config.retry_period)
    except ValueError as error:
        print(f"webapp-scaler operator: {error}", file=sys.stderr)
        return 2
    kopf.configure(
        verbose=config.verbose,
        log_format=kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if config.metrics_port:
        start_http_server(config.metrics_port, addr=config.metrics_address)
    import webapp_scaler.handlers  # noqa: F401  (registers the handlers)

    return asyncio.run(operate(config, timings))


async def operate(config: settings.Config, timings: leader.Timings) -> int:
    identity = config.lease_identity or leader.default_identity()
    lock = leader.KubeLeaseLock(
        Kube.from_environment().api,
        config.lease_namespace or leader.default_namespace(),
        config.lease_name,
        identity,
    )
    stop = asyncio.Event()
    operator = functools.partial(
        kopf.operator,
        standalone=True,  # no kopf peering: the Lease decides who runs (module docstring)
        namespaces=list(config.namespaces),
        clusterwide=not config.namespaces,
        liveness_endpoint=config.liveness_endpoint,
        memo=kopf.Memo(config=config),
        stop_flag=stop,
    )
    if config.standalone:
        return await standalone(
            operator, leader.StandaloneClaim(lock, identity, leader.scope_of(config.namespaces), timings)
        )

    elector = leader.LeaderElector(lock, identity, timings)
    async with standby(config.liveness_endpoint, elector, stop):
        acquired = await elector.acquire(stop)
    if not acquired:
        return 0
    if stop.is_set():  # told to stop between taking the lease and starting kopf
        await elector.release()
        return 0
    holding = asyncio.create_task(elector.hold(), name="leader-election")
    operating = asyncio.create_task(operator(), name="kopf-operator")
    done, _ = await asyncio.wait({holding, operating}, return_when=asyncio.FIRST_COMPLETED)
    if holding in done:
        lost_leadership()
    holding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holding
    try:
        operating.result()  # kopf's own failure, re-raised once the lease is released
    finally:
        await elector.release()  # kopf has stopped every handler: nothing acts any more
    return 0


async def standalone(operator: Any, claim: leader.StandaloneClaim) -> int:
    """Act at once; claim the Lease beside kopf, only to notice a second standalone operator."""
    claiming = asyncio.create_task(claim.run(), name="standalone-claim")
    try:
        await operator()
    finally:
        claiming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await claiming
    return 0


def lost_leadership() -> None:
    """Stop acting now: no handler, daemon or worker thread may run one more step without the lease.
    A graceful kopf shutdown would let the daemons finish their rounds (up to their cancellation timeout),
    so the process ends at once, as client-go's controllers do (klog.Fatal on OnStoppedLeading); the
    operator rebuilds its state from the cluster when restarted."""
    logger.critical("lost leadership: exiting so that this replica never acts without the lease")
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_LOST_LEADERSHIP)


@contextlib.asynccontextmanager
async def standby(endpoint: str | None, elector: leader.LeaderElector, stop: asyncio.Event) -> AsyncIterator[None]:
    """While waiting for the lease: SIGTERM/SIGINT end the wait, and the liveness endpoint answers
    (200, with the holder seen), at the address kopf serves it on once this replica leads."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = None
    if endpoint:
        from aiohttp import web

        async def healthz(_: web.Request) -> web.Response:
            return web.json_response({"standby": True, "leader": elector.holder})

        parts = urllib.parse.urlsplit(endpoint)
        app = web.Application()
        app.add_routes([web.get(parts.path or "/", healthz)])
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, parts.hostname or "localhost", parts.port or 80).start()
    try:
        yield
    finally:
        # the signal handlers stay until kopf installs its own: a SIGTERM in between sets `stop`, which
        # kopf, handed it as its stop flag, obeys at once
        if runner is not None:
            await runner.cleanup()  # free the port for kopf's own liveness endpoint
