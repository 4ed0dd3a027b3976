"""The drain matrix's pure half: every combination accounted for, the CI form is the supported set, the
WebAppScaling each one runs, and the table its figures become."""

from __future__ import annotations

from webapp_scaler.webappscaling import parse_valid
from webapp_scaler_dev.drainmatrix.combinations import (
    ALL,
    MODES,
    SHORT,
    SUPPORTED,
    WHY_NOT,
    Combination,
    MatrixSettings,
    Outcome,
    markdown_table,
    reasons,
    webappscaling,
)


def test_every_combination_is_either_supported_or_explained() -> None:
    assert len(ALL) == len(set(ALL)) == 8
    for combination in ALL:
        assert (combination in SUPPORTED) != (combination in WHY_NOT), combination
    assert set(SHORT) == set(SUPPORTED)
    assert {c.mode for c in ALL} == set(MODES)


def test_each_combination_runs_a_valid_webappscaling_in_its_mode() -> None:
    for combination in ALL:
        body = webappscaling(combination, "ns", MatrixSettings(), vms=3)
        parsed = parse_valid({**body, "metadata": {**body["metadata"], "uid": "u", "generation": 1}})
        assert parsed.spec.scaling.replicas.min == parsed.spec.scaling.replicas.max == 3
        assert body["spec"]["scaleIn"]["drain"]["mode"] == combination.mode
        assert ("route" in body["spec"]) == (combination.route == "HTTPRoute")
        assert ("ingress" in body["spec"]) == (combination.route == "Ingress")


def test_the_table_shows_figures_and_failures() -> None:
    ok = Outcome(
        Combination("nginx", "EndpointSlices", "RefuseNewSessions"),
        users=40,
        requests=300,
        served_by_draining=12,
        probes=20,
        probes_ok=20,
        refused_by_draining=7,
        drained_vm="shop-a",
        drain_to_delete_s=9.4,
    )
    lost = Outcome(
        Combination("nginx", "EndpointSlices", "Readiness"),
        users=40,
        requests=280,
        sessions_lost=3,
        errors=2,
        turned_away=1,
        drain_to_delete_s=12.0,
    )
    failed = Outcome(Combination("traefik", "Ingress", "Readiness"), failure="TimeoutError: no VMs ready")
    assert ok.clean and not lost.clean and not failed.clean
    table = markdown_table([failed, lost, ok])
    lines = table.splitlines()
    assert lines[2].startswith(
        "| nginx (cookie hash, next upstream on 503) · EndpointSlices · Readiness | no | 40 | 280 | 3 | 3 |"
    )
    assert "| yes | 40 | 300 | 0 | 0 | 12 | 20/20 (7) | 9 s |" in lines[3]
    assert not Outcome(ok.combination, probes=20, probes_ok=19, drain_to_delete_s=1.0).clean
    assert "run failed: TimeoutError: no VMs ready" in lines[4]
    assert "not supported" in reasons([failed.combination])
