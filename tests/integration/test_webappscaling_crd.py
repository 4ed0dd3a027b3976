"""The WebAppScaling CRD against the real kube-apiserver: install, explain, examples, admission, /scale."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import REPO, Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds_installed")]


def valid() -> dict[str, Any]:
    return {
        "apiVersion": "webappscaler.io/v1alpha1",
        "kind": "WebAppScaling",
        "metadata": {"name": "shop"},
        "spec": {
            "goldenImage": {"name": "golden"},
            "vmTemplate": {"spec": {"domain": {"devices": {}}}},
        },
    }


def test_crd_is_established_and_explained(kubectl: Kubectl) -> None:
    crd = json.loads(kubectl("get", "crd", "webappscalings.webappscaler.io", "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"

    spec = kubectl("explain", "was.spec").stdout
    assert "Desired behaviour of the scaled web application." in spec
    assert "goldenImage" in spec
    assert "vmTemplate" in spec
    sessions = kubectl("explain", "was.spec.sessions").stdout
    assert "The active-session indicator and how it is read and smoothed." in sessions
    assert "targetPerVM" in sessions
    assert "Active sessions per VM the scaler aims for" in sessions
    drain = kubectl("explain", "webappscaling.spec.scaleIn.drain.timeoutSeconds").stdout
    assert "Longest drain" in drain


EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_passes_server_side_dry_run(kubectl: Kubectl, namespace: str, example: Path) -> None:
    result = kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(example))
    assert "(server dry run)" in result.stdout


def test_examples_exist() -> None:
    kinds = {doc["kind"] for p in EXAMPLES for doc in yaml.safe_load_all(p.read_text()) if doc}
    assert {"WebAppScaling", "DataVolume"} <= kinds


def mutate(path: str, value: Any) -> dict[str, Any]:
    """A valid object with `path` (dot-separated; a trailing '-' deletes) set to `value`."""
    obj = valid()
    *parents, leaf = path.split(".")
    node = obj
    for key in parents:
        node = node.setdefault(key, {})
    if leaf.endswith("-"):
        del node[leaf[:-1]]
    else:
        node[leaf] = copy.deepcopy(value)
    return obj


INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "min-above-max",
        mutate("spec.replicas", {"min": 5, "max": 3}),
        ["spec.replicas", "min must be less than or equal to spec.replicas.max"],
    ),
    ("max-zero", mutate("spec.replicas", {"max": 0}), ["spec.replicas.max", "greater than or equal to 1"]),
    (
        "min-negative",
        mutate("spec.replicas", {"min": -1}),
        ["spec.replicas.min", "greater than or equal to 0"],
    ),
    (
        "max-too-large",
        mutate("spec.replicas", {"max": 5000}),
        ["spec.replicas.max", "less than or equal to 1000"],
    ),
    (
        "target-zero",
        mutate("spec.sessions", {"targetPerVM": 0}),
        ["spec.sessions.targetPerVM", "greater than or equal to 1"],
    ),
    (
        "target-wrong-type",
        mutate("spec.sessions", {"targetPerVM": "eighty"}),
        ["spec.sessions.targetPerVM", "must be of type integer"],
    ),
    (
        "window-below-scrape-interval",
        mutate("spec.sessions", {"scrapeIntervalSeconds": 30, "movingAverage": {"windowSeconds": 10}}),
        ["windowSeconds must be at least spec.sessions.scrapeIntervalSeconds"],
    ),
    (
        "timeout-above-interval",
        mutate("spec.sessions", {"scrapeIntervalSeconds": 5, "scrapeTimeoutSeconds": 10}),
        ["scrapeTimeoutSeconds must not exceed spec.sessions.scrapeIntervalSeconds"],
    ),
    (
        "unknown-average-kind",
        mutate("spec.sessions", {"movingAverage": {"kind": "Median"}}),
        ["spec.sessions.movingAverage.kind", "Unsupported value", "Simple", "Exponential"],
    ),
    (
        "agent-port-out-of-range",
        mutate("spec.sessions", {"agent": {"port": 70000}}),
        ["spec.sessions.agent.port", "less than or equal to 65535"],
    ),
    (
        "metrics-path-relative",
        mutate("spec.sessions", {"agent": {"path": "metrics"}}),
        ["spec.sessions.agent.path", "should match '^/'"],
    ),
    ("golden-image-missing", mutate("spec.goldenImage-", None), ["spec.goldenImage", "Required value"]),
    (
        "golden-image-bad-name",
        mutate("spec.goldenImage", {"name": "Golden_Image"}),
        ["spec.goldenImage.name"],
    ),
    (
        "golden-image-unknown-kind",
        mutate("spec.goldenImage", {"name": "g", "kind": "ContainerDisk"}),
        ["spec.goldenImage.kind", "Unsupported value", "DataVolume"],
    ),
    (
        "golden-image-bad-size",
        mutate("spec.goldenImage", {"name": "g", "storage": {"size": "lots"}}),
        ["spec.goldenImage.storage.size"],
    ),
    (
        "vm-template-without-domain",
        mutate("spec.vmTemplate", {"spec": {"networks": []}}),
        ["spec.vmTemplate.spec.domain", "Required value"],
    ),
    (
        "reserved-label",
        mutate(
            "spec.vmTemplate",
            {"metadata": {"labels": {"webappscaler.io/scaling": "x"}}, "spec": {"domain": {}}},
        ),
        ["labels under webappscaler.io/ are set by the operator"],
    ),
    (
        "root-disk-name-taken",
        mutate(
            "spec.vmTemplate",
            {"spec": {"domain": {}, "volumes": [{"name": "rootdisk", "emptyDisk": {"capacity": "1Gi"}}]}},
        ),
        ["must not contain a volume named like rootDiskName"],
    ),
    (
        "tolerance-above-one",
        mutate("spec.behavior", {"tolerance": 1.5}),
        ["spec.behavior.tolerance", "less than or equal to 1"],
    ),
    (
        "policy-type-pods",
        mutate("spec.behavior", {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}}),
        ["spec.behavior.scaleUp.policies[0].type", "Unsupported value", "VMs", "Percent"],
    ),
    (
        "policy-period-zero",
        mutate("spec.behavior", {"scaleDown": {"policies": [{"type": "VMs", "value": 1, "periodSeconds": 0}]}}),
        ["spec.behavior.scaleDown.policies[0].periodSeconds", "greater than or equal to 1"],
    ),
    (
        "policy-without-value",
        mutate("spec.behavior", {"scaleDown": {"policies": [{"type": "VMs", "periodSeconds": 60}]}}),
        ["spec.behavior.scaleDown.policies[0].value", "Required value"],
    ),
    (
        "select-policy-unknown",
        mutate("spec.behavior", {"scaleUp": {"selectPolicy": "Random"}}),
        ["spec.behavior.scaleUp.selectPolicy", "Unsupported value"],
    ),
    (
        "scale-in-order-unknown",
        mutate("spec.scaleIn", {"order": "Random"}),
        ["spec.scaleIn.order", "Unsupported value", "FewestSessions"],
    ),
    (
        "drain-timeout-negative",
        mutate("spec.scaleIn", {"drain": {"timeoutSeconds": -5}}),
        ["spec.scaleIn.drain.timeoutSeconds", "greater than or equal to 0"],
    ),
    (
        "tls-without-host",
        mutate("spec.ingress", {"enabled": True, "tls": {"secretName": "s"}}),
        ["spec.ingress.tls needs spec.ingress.host"],
    ),
    (
        "ingress-path-relative",
        mutate("spec.ingress", {"path": "app"}),
        ["spec.ingress.path", "should match '^/'"],
    ),
    ("ingress-host-invalid", mutate("spec.ingress", {"host": "Shop Example"}), ["spec.ingress.host"]),
    (
        "affinity-timeout-without-affinity",
        mutate("spec.service", {"sessionAffinity": "None", "sessionAffinityTimeoutSeconds": 60}),
        ["sessionAffinityTimeoutSeconds needs sessionAffinity ClientIP"],
    ),
    (
        "damping-zero",
        mutate("spec.prediction", {"damping": 0}),
        ["spec.prediction.damping", "should be greater than 0"],
    ),
    (
        "mode-unknown",
        mutate("spec.mode", "Manual"),
        ["spec.mode", "Unsupported value", "Sessions", "External"],
    ),
    ("name-too-long", mutate("metadata.name", "a" * 46), ["metadata.name must be at most 45 characters"]),
]


@pytest.mark.parametrize(("obj", "fragments"), [(o, f) for _, o, f in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_webappscaling_is_rejected_with_a_clear_message(
    kubectl: Kubectl, namespace: str, obj: dict[str, Any], fragments: list[str]
) -> None:
    result = kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode != 0, f"accepted: {json.dumps(obj)}"
    assert "is invalid" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_valid_object_gets_defaults(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(valid()))
    obj = json.loads(kubectl("get", "-n", namespace, "was/shop", "-o", "json").stdout)
    spec = obj["spec"]
    assert spec["replicas"] == {"min": 1, "max": 10}
    assert spec["sessions"]["targetPerVM"] == 80
    assert spec["sessions"]["movingAverage"] == {"kind": "Simple", "windowSeconds": 120}
    assert spec["scaleIn"]["drain"] == {"enabled": True, "timeoutSeconds": 3600}
    assert spec["warmPool"] == {"size": 2}
    assert spec["mode"] == "Sessions"
    assert spec["paused"] is False


def test_printer_columns_and_scale_subresource(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(valid()))
    header = kubectl("get", "-n", namespace, "was").stdout.splitlines()[0].split()
    assert header == ["NAME", "MIN", "MAX", "REPLICAS", "READY", "SESSIONS", "AVERAGE", "AGE"]
    row = kubectl("get", "-n", namespace, "was", "shop", "--no-headers").stdout.split()
    assert row[:3] == ["shop", "1", "10"]

    kubectl("scale", "-n", namespace, "was/shop", "--replicas=3")
    obj = json.loads(kubectl("get", "-n", namespace, "was/shop", "-o", "json").stdout)
    assert obj["spec"]["replicas"]["desired"] == 3
    scale = json.loads(
        kubectl(
            "get", "--raw", f"/apis/webappscaler.io/v1alpha1/namespaces/{namespace}/webappscalings/shop/scale"
        ).stdout
    )
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 3
