"""The WebAppScaling CRD against the real kube-apiserver: install, explain, examples, admission, /scale."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import REPO, Kubectl
from webapp_scaler import admission, webappscaling

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
    # drain modes and routes: a person reads what is wrong and why, and nothing is created
    (
        "drain-mode-needs-proxy",
        mutate("spec.sessions", {"agent": {"source": "connections"}}),
        [webappscaling.DRAIN_MODE_NEEDS_PROXY],
    ),
    (
        "drain-mode-unknown",
        mutate("spec.scaleIn", {"drain": {"mode": "Graceful"}}),
        ["spec.scaleIn.drain.mode", "Unsupported value", "Readiness", "RefuseNewSessions"],
    ),
    (
        "agent-source-unknown",
        mutate("spec.sessions", {"agent": {"source": "nginx"}}),
        ["spec.sessions.agent.source", "Unsupported value", "proxy", "connections"],
    ),
    (
        "route-without-parents",
        mutate("spec.route", {"hostnames": ["shop.example.com"]}),
        [webappscaling.ROUTE_NEEDS_PARENTS],
    ),
    ("route-empty-parents", mutate("spec.route", {"parentRefs": []}), [webappscaling.ROUTE_NEEDS_PARENTS]),
    (
        "route-parent-without-name",
        mutate("spec.route", {"parentRefs": [{"namespace": "gateways"}]}),
        ["spec.route.parentRefs[0].name", "Required value"],
    ),
    (
        "retry-attempts-too-few",
        mutate("spec.route", {"parentRefs": [{"name": "gw"}], "retry": {"attempts": 1}}),
        [webappscaling.RETRY_ATTEMPTS_RANGE],
    ),
    (
        "retry-attempts-too-many",
        mutate("spec.route", {"parentRefs": [{"name": "gw"}], "retry": {"attempts": 25}}),
        [webappscaling.RETRY_ATTEMPTS_RANGE],
    ),
    (
        "retry-code-not-an-error",
        mutate("spec.route", {"parentRefs": [{"name": "gw"}], "retry": {"codes": [200]}}),
        ["spec.route.retry.codes[0]", "greater than or equal to 400"],
    ),
    (
        "retry-backoff-not-a-duration",
        mutate("spec.route", {"parentRefs": [{"name": "gw"}], "retry": {"backoff": "1 second"}}),
        ["spec.route.retry.backoff", "should match"],
    ),
    (
        "permanent-cookie-without-timeout",
        mutate("spec.route", {"parentRefs": [{"name": "gw"}], "sessionPersistence": {"lifetimeType": "Permanent"}}),
        [webappscaling.PERMANENT_COOKIE_NEEDS_TIMEOUT],
    ),
    (
        "ingress-controller-unknown",
        mutate("spec.ingress", {"controller": "nginx"}),
        ["spec.ingress.controller", "Unsupported value", "IngressNginx", "Traefik"],
    ),
]


def template(**metadata: dict[str, str]) -> dict[str, Any]:
    """A valid object whose VM template has these labels or annotations."""
    return mutate("spec.vmTemplate", {"metadata": metadata, "spec": {"domain": {}}})


# the strings that become Kubernetes names, labels, annotations, hosts and URL paths, and combinations that
# make no sense: refused at admission, each naming the field and the problem (docs: issue "one bad string")
GW = {"name": "gw"}
STRINGS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("name-with-a-dot", mutate("metadata.name", "shop.v2"), [webappscaling.NAME_NOT_DNS_LABEL]),
    ("name-like-a-host", mutate("metadata.name", "www.shop"), [webappscaling.NAME_NOT_DNS_LABEL]),
    (
        "golden-image-name-double-dot",
        mutate("spec.goldenImage", {"name": "golden..image"}),
        [webappscaling.GOLDEN_IMAGE_NAME_FORMAT],
    ),
    (
        "golden-image-name-trailing-dot",
        mutate("spec.goldenImage", {"name": "golden."}),
        [webappscaling.GOLDEN_IMAGE_NAME_FORMAT],
    ),
    (
        "golden-image-name-too-long",
        mutate("spec.goldenImage", {"name": "g" * 254}),
        ["spec.goldenImage.name", "may not be more than 253"],
    ),
    (
        "golden-image-namespace-uppercase",
        mutate("spec.goldenImage", {"name": "golden", "namespace": "Images"}),
        [webappscaling.GOLDEN_IMAGE_NAMESPACE_FORMAT],
    ),
    (
        "storage-class-with-a-space",
        mutate("spec.goldenImage", {"name": "golden", "storage": {"storageClassName": "fast ssd"}}),
        [webappscaling.STORAGE_CLASS_FORMAT],
    ),
    ("template-label-key-with-a-space", template(labels={"team name": "web"}), [webappscaling.TEMPLATE_LABEL_KEYS]),
    (
        "template-label-name-too-long",
        template(labels={"example.com/" + "n" * 64: "x"}),
        [webappscaling.TEMPLATE_LABEL_KEYS],
    ),
    ("template-label-value-with-a-space", template(labels={"app": "web shop"}), [webappscaling.TEMPLATE_LABEL_VALUES]),
    (
        "template-label-value-too-long",
        template(labels={"app": "v" * 64}),
        ["spec.vmTemplate.metadata.labels.app", "may not be more than 63"],
    ),
    (
        "template-label-managed-by",
        template(labels={"app.kubernetes.io/managed-by": "helm"}),
        [webappscaling.TEMPLATE_LABEL_OPERATORS],
    ),
    (
        "template-label-kubevirt",
        template(labels={"kubevirt.io": "virt-launcher"}),
        [webappscaling.TEMPLATE_LABEL_OPERATORS],
    ),
    (
        "template-annotation-key-invalid",
        template(annotations={"owner:team": "web"}),
        [webappscaling.TEMPLATE_ANNOTATION_KEYS],
    ),
    (
        "volume-name-invalid",
        mutate("spec.vmTemplate", {"spec": {"domain": {}, "volumes": [{"name": "Cloud_Init", "emptyDisk": {}}]}}),
        [webappscaling.VOLUME_NAME_FORMAT],
    ),
    (
        "root-disk-name-invalid",
        mutate("spec.vmTemplate", {"rootDiskName": "Root.Disk", "spec": {"domain": {}}}),
        [webappscaling.ROOT_DISK_NAME_FORMAT],
    ),
    (
        "agent-path-with-a-space",
        mutate("spec.sessions", {"agent": {"path": "/my metrics"}}),
        [webappscaling.AGENT_PATH_FORMAT],
    ),
    (
        "agent-drain-path-with-a-newline",
        mutate("spec.sessions", {"agent": {"drainPath": "/drain\nX-Injected: 1"}}),
        [webappscaling.AGENT_DRAIN_PATH_FORMAT],
    ),
    (
        "agent-paths-equal",
        mutate("spec.sessions", {"agent": {"path": "/agent", "drainPath": "/agent"}}),
        [webappscaling.AGENT_PATHS_DIFFER],
    ),
    (
        "agent-port-zero",
        mutate("spec.sessions", {"agent": {"port": 0}}),
        ["spec.sessions.agent.port", "greater than or equal to 1"],
    ),
    (
        "target-port-is-agent-port",
        mutate("spec.service", {"targetPort": 9100}),
        [webappscaling.TARGET_PORT_IS_AGENT_PORT],
    ),
    ("service-port-zero", mutate("spec.service", {"port": 0}), ["spec.service.port", "greater than or equal to 1"]),
    (
        "service-target-port-too-large",
        mutate("spec.service", {"targetPort": 65536}),
        ["spec.service.targetPort", "less than or equal to 65535"],
    ),
    (
        "drain-token-secret-name-invalid",
        mutate("spec.sessions", {"agent": {"drainTokenSecretRef": {"name": "Drain_Token"}}}),
        [webappscaling.DRAIN_SECRET_NAME_FORMAT],
    ),
    (
        "drain-token-secret-key-invalid",
        mutate("spec.sessions", {"agent": {"drainTokenSecretRef": {"name": "drain", "key": "to ken"}}}),
        [webappscaling.DRAIN_SECRET_KEY_FORMAT],
    ),
    (
        "ingress-host-label-too-long",
        mutate("spec.ingress", {"host": "a" * 64 + ".example.com"}),
        [webappscaling.INGRESS_HOST_FORMAT],
    ),
    ("ingress-host-ip-address", mutate("spec.ingress", {"host": "10.0.0.1"}), [webappscaling.INGRESS_HOST_FORMAT]),
    (
        "ingress-host-empty-label",
        mutate("spec.ingress", {"host": "shop..example.com"}),
        [webappscaling.INGRESS_HOST_FORMAT],
    ),
    (
        "ingress-class-with-a-space",
        mutate("spec.ingress", {"className": "nginx internal"}),
        [webappscaling.INGRESS_CLASS_FORMAT],
    ),
    ("ingress-class-uppercase", mutate("spec.ingress", {"className": "NGINX"}), [webappscaling.INGRESS_CLASS_FORMAT]),
    (
        "tls-secret-name-invalid",
        mutate("spec.ingress", {"host": "shop.example.com", "tls": {"secretName": "shop_tls"}}),
        [webappscaling.INGRESS_TLS_SECRET_FORMAT],
    ),
    ("ingress-path-with-a-space", mutate("spec.ingress", {"path": "/my shop"}), [webappscaling.INGRESS_PATH_FORMAT]),
    ("ingress-path-double-slash", mutate("spec.ingress", {"path": "/shop//x"}), [webappscaling.INGRESS_PATH_FORMAT]),
    (
        "ingress-path-dot-segment",
        mutate("spec.ingress", {"path": "/shop/../admin"}),
        [webappscaling.INGRESS_PATH_FORMAT],
    ),
    (
        "ingress-annotation-key-with-a-space",
        mutate("spec.ingress", {"annotations": {"nginx.ingress.kubernetes.io/affinity mode": "persistent"}}),
        [webappscaling.INGRESS_ANNOTATION_KEYS],
    ),
    (
        "ingress-annotation-prefix-invalid",
        mutate("spec.ingress", {"annotations": {"Nginx_Ingress/affinity": "cookie"}}),
        [webappscaling.INGRESS_ANNOTATION_KEYS],
    ),
    (
        "route-hostname-label-too-long",
        mutate("spec.route", {"parentRefs": [GW], "hostnames": ["shop.example.com", "b" * 64 + ".example.com"]}),
        [webappscaling.ROUTE_HOSTNAMES_FORMAT],
    ),
    (
        "route-hostname-ip-address",
        mutate("spec.route", {"parentRefs": [GW], "hostnames": ["192.168.0.1"]}),
        [webappscaling.ROUTE_HOSTNAMES_FORMAT],
    ),
    (
        "route-path-encoded-slash",
        mutate("spec.route", {"parentRefs": [GW], "path": "/a%2Fb"}),
        [webappscaling.ROUTE_PATH_FORMAT],
    ),
    (
        "route-parent-name-invalid",
        mutate("spec.route", {"parentRefs": [{"name": "Public Gateway"}]}),
        [webappscaling.ROUTE_PARENT_NAME_FORMAT],
    ),
    (
        "route-parent-port-zero",
        mutate("spec.route", {"parentRefs": [{"name": "gw", "port": 0}]}),
        ["spec.route.parentRefs[0].port", "greater than or equal to 1"],
    ),
    (
        "route-annotation-key-invalid",
        mutate("spec.route", {"parentRefs": [GW], "annotations": {"/x": "y"}}),
        [webappscaling.ROUTE_ANNOTATION_KEYS],
    ),
    (
        "route-label-value-invalid",
        mutate("spec.route", {"parentRefs": [GW], "labels": {"tier": "-front"}}),
        [webappscaling.ROUTE_LABEL_VALUES],
    ),
    (
        "route-label-key-invalid",
        mutate("spec.route", {"parentRefs": [GW], "labels": {"tier/": "front"}}),
        [webappscaling.ROUTE_LABEL_KEYS],
    ),
]
INVALID += STRINGS
INVALID.append(
    ("desired-in-sessions-mode", mutate("spec.replicas", {"desired": 2}), [admission.DESIRED_NEEDS_EXTERNAL])
)


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
    assert spec["scaleIn"]["drain"] == {"enabled": True, "timeoutSeconds": 3600, "mode": "RefuseNewSessions"}
    assert spec["sessions"]["agent"]["source"] == "proxy"
    assert spec["ingress"]["controller"] == "Any"
    assert "route" not in spec
    assert spec["warmPool"] == {"size": 2}
    assert spec["mode"] == "Sessions"
    assert spec["paused"] is False


def test_printer_columns_and_scale_subresource(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(mutate("spec.mode", "External")))
    header = kubectl("get", "-n", namespace, "was").stdout.splitlines()[0].split()
    assert header == ["NAME", "MIN", "MAX", "REPLICAS", "READY", "SESSIONS", "AVERAGE", "DRAIN", "AGE"]
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


def test_kubectl_scale_is_refused_in_sessions_mode_and_names_the_field(kubectl: Kubectl, namespace: str) -> None:
    """The /scale subresource writes spec.replicas.desired through the CRD's validation, CEL included: in
    Sessions mode (the default) the count would be stored and ignored, so the write is refused, saying
    what to set; once spec.mode is External the same command scales."""
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(valid()))
    refused = kubectl("scale", "-n", namespace, "was/shop", "--replicas=3", check=False)
    assert refused.returncode != 0, refused.stdout
    assert admission.DESIRED_NEEDS_EXTERNAL in " ".join(refused.stderr.split()), refused.stderr
    obj = json.loads(kubectl("get", "-n", namespace, "was/shop", "-o", "json").stdout)
    assert "desired" not in obj["spec"]["replicas"]

    kubectl("patch", "-n", namespace, "was/shop", "--type=merge", "-p", '{"spec": {"mode": "External"}}')
    kubectl("scale", "-n", namespace, "was/shop", "--replicas=3")
    obj = json.loads(kubectl("get", "-n", namespace, "was/shop", "-o", "json").stdout)
    assert obj["spec"]["replicas"]["desired"] == 3
    # back to the session scaler: the stored count must go with it, and the message says which field
    back = kubectl(
        "patch", "-n", namespace, "was/shop", "--type=merge", "-p", '{"spec": {"mode": "Sessions"}}', check=False
    )
    assert back.returncode != 0 and "spec.replicas.desired" in back.stderr
    kubectl(
        "patch",
        "-n",
        namespace,
        "was/shop",
        "--type=merge",
        "-p",
        '{"spec": {"mode": "Sessions", "replicas": {"desired": null}}}',
    )


def test_a_route_gets_its_defaults(kubectl: Kubectl, namespace: str) -> None:
    obj = mutate("spec.route", {"parentRefs": [{"name": "public"}]})
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj))
    route = json.loads(kubectl("get", "-n", namespace, "was/shop", "-o", "json").stdout)["spec"]["route"]
    assert route == {
        "parentRefs": [{"name": "public"}],
        "path": "/",
        "sessionPersistence": {"enabled": False, "cookieName": "WAS_STICKY", "lifetimeType": "Session"},
    }
    explained = kubectl("explain", "was.spec.scaleIn.drain.mode").stdout
    assert "RefuseNewSessions" in explained and "Readiness" in explained


# The admission cases whose message comes from a CEL rule: `webapp-scaler render` says the same words.
CEL_CASES = [
    (i, o, f)
    for i, o, f in INVALID
    if i
    in {
        "min-above-max",
        "window-below-scrape-interval",
        "timeout-above-interval",
        "reserved-label",
        "root-disk-name-taken",
        "tls-without-host",
        "affinity-timeout-without-affinity",
        "name-too-long",
        "drain-mode-needs-proxy",
        "route-without-parents",
        "route-empty-parents",
        "retry-attempts-too-few",
        "retry-attempts-too-many",
        "permanent-cookie-without-timeout",
        "name-with-a-dot",
        "template-label-managed-by",
        "agent-paths-equal",
        "target-port-is-agent-port",
        "ingress-class-with-a-space",
        "tls-secret-name-invalid",
        "ingress-annotation-key-with-a-space",
        "route-hostname-label-too-long",
        "desired-in-sessions-mode",
    }
]


@pytest.mark.parametrize(("obj", "fragments"), [(o, f) for _, o, f in CEL_CASES], ids=[i for i, _, _ in CEL_CASES])
def test_render_refuses_what_admission_refuses_in_the_same_words(
    kubectl: Kubectl, namespace: str, obj: dict[str, Any], fragments: list[str]
) -> None:
    admitted = kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
    rendered = subprocess.run(
        [sys.executable, "-m", "webapp_scaler.cli", "render", "-n", namespace, "-f", "-"],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        check=False,
    )
    assert admitted.returncode != 0 and rendered.returncode != 0
    assert rendered.stdout == ""
    message = fragments[-1]
    assert message in " ".join(admitted.stderr.split()), admitted.stderr
    assert message in rendered.stderr, rendered.stderr
