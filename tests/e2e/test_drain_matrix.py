"""The drain matrix in its CI form, with real load balancers against the dev cluster: every supported load
balancer × drain mode across a real scale-in (three VMs → two) with shoppers arriving all the time; plus
Traefik, a real ingress controller, routing the HTTPRoute the operator writes.

Each supported combination must lose no session, show users no error, keep serving the drained VM's users
until it is empty, and — at the moment the drain begins — answer every new visitor, some of whom the
draining VM refused (the balancer retried them elsewhere). `webapp-scaler-dev drain-matrix --write
docs/load-balancers.md` runs every combination, supported or not, and writes the table."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from webapp_scaler_dev.drainmatrix.combinations import SHORT, Combination, MatrixSettings, Outcome
from webapp_scaler_dev.drainmatrix.run import MatrixBed, matrix_bed, run_all

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: every VM is a network namespace (CI runs as root)"),
    pytest.mark.skipif(
        shutil.which("haproxy") is None or shutil.which("nginx") is None,
        reason="haproxy and nginx are installed by make system-packages",
    ),
]

ROUTED = Combination("traefik", "HTTPRoute", "RefuseNewSessions")


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir: Path = tmp_path_factory.mktemp("drain-matrix")
    settings = MatrixSettings(parallel=4, warmup_s=6.0, after_delete_s=2.0)  # the CI form: shorter, all at once
    with matrix_bed(settings, workdir, progress=lambda _line: None) as running:
        yield running


@dataclass
class Results:
    outcomes: dict[Combination, Outcome]
    route: dict[str, Any] | BaseException  # the HTTPRoute as Traefik left it, and who answered through it
    served: list[str]


@pytest.fixture(scope="module")
def results(bed: MatrixBed) -> Results:
    """The supported combinations and the Traefik HTTPRoute check, all at the same time (CI time)."""

    async def everything() -> Results:
        route: dict[str, Any] | BaseException
        served: list[str] = []
        matrix, routed = await asyncio.gather(run_all(bed, list(SHORT)), _routed(bed), return_exceptions=True)
        if isinstance(matrix, BaseException):
            raise matrix
        if isinstance(routed, BaseException):
            route = routed
        else:
            route, served = routed
        return Results({o.combination: o for o in matrix}, route, served)

    return asyncio.run(everything())


@pytest.fixture(scope="module")
def outcomes(results: Results) -> dict[Combination, Outcome]:
    return results.outcomes


@pytest.mark.parametrize("combination", SHORT, ids=[c.slug for c in SHORT])
def test_supported_combination_loses_nothing_across_a_scale_in(
    outcomes: dict[Combination, Outcome], combination: Combination
) -> None:
    o = outcomes[combination]
    assert o.failure is None, o.failure
    assert o.users > 0 and o.requests > 0
    assert o.sessions_lost == 0, o.losses
    assert o.errors == 0 and o.turned_away == 0, o.error_kinds
    assert o.drain_to_delete_s is not None, "the drained VM was never deleted"
    assert o.served_by_draining > 0, "the draining VM served none of its users through the balancer"


@pytest.mark.parametrize("combination", SHORT, ids=[c.slug for c in SHORT])
def test_new_visitors_at_drain_start_are_all_answered(
    outcomes: dict[Combination, Outcome], combination: Combination
) -> None:
    o = outcomes[combination]
    assert o.probes > 0, "the draining VM's agent never reported the drain"
    assert o.probes_ok == o.probes
    if combination.mode == "RefuseNewSessions":
        # the VM stays Ready, so the balancer still sends new visitors there: the agent refuses them and
        # the balancer retries each on another VM — a request that hit a draining VM and still succeeded
        assert o.refused_by_draining > 0


def test_traefik_routes_the_operators_httproute(results: Results) -> None:
    """Traefik's Gateway provider accepts the HTTPRoute the operator wrote and routes it to the shop."""
    if isinstance(results.route, BaseException):
        raise results.route
    route = results.route
    owner = route["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner.get("controller")) == ("WebAppScaling", "shop", True)
    parents = route.get("status", {}).get("parents") or []
    accepted = [c for p in parents for c in p.get("conditions", []) if c["type"] == "Accepted"]
    assert accepted and all(c["status"] == "True" for c in accepted), yaml.safe_dump(route.get("status"))
    assert results.served and all(name.startswith("shop-") for name in results.served), results.served


async def _routed(bed: MatrixBed) -> tuple[dict[str, Any], list[str]]:
    namespace = f"dm-{ROUTED.slug}"
    async with bed.combination(ROUTED, namespace) as balancer:
        assert bed.api is not None
        custom = client.CustomObjectsApi(bed.api)
        route: Any = await asyncio.to_thread(
            custom.get_namespaced_custom_object, "gateway.networking.k8s.io", "v1", namespace, "httproutes", "shop"
        )
        return route, await bed.served_by(balancer.url, 10)
