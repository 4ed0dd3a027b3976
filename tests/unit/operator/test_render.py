"""`webapp-scaler render`: what the operator would create, from the same builders and defaults, with
admission's messages for an invalid spec; multi-document files and stdin."""

from __future__ import annotations

import argparse
import copy
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.unit.test_crd_defaults import apply_defaults, spec_schema
from webapp_scaler import cli, resources, webappscaling
from webapp_scaler.render import render

EXAMPLES = REPO / "manifests" / "examples"


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = cli.build_parser().parse_args(["render", *argv])
    assert isinstance(args, argparse.Namespace)
    code = cli.render(args, io.StringIO(stdin), out, err)
    return code, out.getvalue(), err.getvalue()


def kinds(text: str) -> list[str]:
    return [doc["kind"] for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*webappscaling*.yaml")), ids=lambda p: p.name)
def test_every_example_renders(example: Path) -> None:
    code, out, err = run("-f", str(example))
    assert (code, err) == (0, "")
    found = kinds(out)
    assert found[0] == "VirtualMachine" and "Service" in found
    body = yaml.safe_load(example.read_text())
    spec = body["spec"]
    assert ("Ingress" in found) == bool((spec.get("ingress") or {}).get("enabled"))
    assert ("HTTPRoute" in found) == ("route" in spec)
    assert ("Secret" in found) == ("drainTokenSecretRef" not in ((spec.get("sessions") or {}).get("agent") or {}))


def test_the_objects_are_the_operators_own_builders_output() -> None:
    body = yaml.safe_load((EXAMPLES / "05-webappscaling-route.yaml").read_text())
    [one] = render([body], namespace="shop")
    was = webappscaling.parse_valid({**body, "metadata": {**body["metadata"], "namespace": "shop"}})
    vm = resources.build_virtualmachine(was, "storefront-xxxxx")
    assert one.objects == [
        vm,
        resources.build_drain_token_secret(
            was, {"metadata": {**vm["metadata"], "uid": ""}}, "(a random token the operator makes for each VM)"
        ),
        resources.build_service(was),
        resources.build_httproute(was, session_persistence_served=True),
    ]
    assert one.objects[0]["metadata"]["namespace"] == "shop"


def test_render_applies_the_crds_defaults_as_the_apiserver_would() -> None:
    """A minimal spec and the same spec defaulted by the CRD (what the operator reads back) render alike."""
    body = yaml.safe_load((EXAMPLES / "02-webappscaling-minimal.yaml").read_text())
    body["spec"]["route"] = {"parentRefs": [{"name": "gw"}], "sessionPersistence": {}}
    body["spec"]["ingress"] = {"enabled": True}
    defaulted = copy.deepcopy(body)
    apply_defaults(spec_schema(), defaulted["spec"])
    assert defaulted != body
    assert render([body])[0].objects == render([defaulted])[0].objects


def test_multi_document_input_from_stdin_skips_other_kinds() -> None:
    text = (
        (EXAMPLES / "01-golden-image.yaml").read_text()
        + "\n---\n"
        + (EXAMPLES / "02-webappscaling-minimal.yaml").read_text()
    )
    text += "\n---\n" + (EXAMPLES / "04-webappscaling-external.yaml").read_text()
    code, out, err = run("-f", "-", "-n", "shop", stdin=text)
    assert (code, err) == (0, "")
    assert kinds(out) == ["VirtualMachine", "Secret", "Service"] * 2
    assert "# webapp-scaler render: what the operator creates for WebAppScaling shop/webshop" in out
    assert "WebAppScaling shop/legacy-erp" in out
    vm = next(yaml.safe_load_all(out))
    assert vm["metadata"]["name"] == "webshop-xxxxx"
    assert vm["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] == "webshop-xxxxx-rootdisk"


def invalid(**spec: Any) -> str:
    body = yaml.safe_load((EXAMPLES / "02-webappscaling-minimal.yaml").read_text())
    body["spec"].update(spec)
    return yaml.safe_dump(body)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"sessions": {"agent": {"source": "connections"}}}, webappscaling.DRAIN_MODE_NEEDS_PROXY),
        ({"route": {"hostnames": ["shop.example.com"]}}, webappscaling.ROUTE_NEEDS_PARENTS),
        ({"route": {"parentRefs": [{"name": "gw"}], "retry": {"attempts": 1}}}, webappscaling.RETRY_ATTEMPTS_RANGE),
        ({"replicas": {"min": 12}}, "spec.replicas.min must be less than or equal to spec.replicas.max"),
        (
            {"scaleIn": {"drain": {"mode": "Sometimes"}}},
            "spec.scaleIn.drain.mode: must be one of Readiness, RefuseNewSessions",
        ),
    ],
    ids=["mode-source", "no-parents", "attempts", "min-max", "unknown-mode"],
)
def test_an_invalid_spec_fails_with_admissions_message_and_prints_nothing(spec: dict[str, Any], message: str) -> None:
    code, out, err = run("-f", "-", stdin=invalid(**spec))
    assert (code, out) == (1, "")
    assert err.startswith("webapp-scaler render: WebAppScaling default/webshop is invalid: ")
    assert message in err


def test_the_standard_channel_leaves_session_persistence_out_and_says_so() -> None:
    code, out, _ = run("-f", str(EXAMPLES / "05-webappscaling-route.yaml"), "--gateway-api", "standard")
    assert code == 0
    route = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "HTTPRoute")
    assert "sessionPersistence" not in route["spec"]["rules"][0]
    assert "has no HTTPRoute sessionPersistence" in out.split("---")[0]
    code, out, _ = run("-f", str(EXAMPLES / "05-webappscaling-route.yaml"))
    route = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "HTTPRoute")
    assert route["spec"]["rules"][0]["sessionPersistence"]["cookie"]["name"] == "STOREFRONT_VM"


def test_unreadable_input_and_mismatched_namespaces_fail() -> None:
    assert run("-f", "/nonexistent.yaml")[0] == 1
    assert run("-f", "-", stdin="a: [")[0] == 1
    code, _, err = run("-f", "-", stdin=(EXAMPLES / "01-golden-image.yaml").read_text())
    assert (code, err) == (1, "webapp-scaler render: no WebAppScaling (webappscaler.io/v1alpha1) in the input\n")
    body = yaml.safe_load((EXAMPLES / "02-webappscaling-minimal.yaml").read_text())
    body["metadata"]["namespace"] = "prod"
    code, _, err = run("-f", "-", "-n", "staging", stdin=yaml.safe_dump(body))
    assert code == 1 and "does not match --namespace staging" in err


def test_the_command_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webapp_scaler.cli", "render", "-f", str(EXAMPLES / "02-webappscaling-minimal.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert kinds(result.stdout) == ["VirtualMachine", "Secret", "Service"]
