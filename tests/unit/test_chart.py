"""The Helm chart (charts/webapp-scaler) with the pinned helm, and the kustomize overlays of manifests/.

The chart and `kubectl apply -k manifests/default` are two ways to install the same operator, so these
tests render both and compare what matters: the RBAC rules (least privilege: neither may grant more than
manifests/default/rbac.yaml, nor less) and the CRD. The chart's copies of the CRD, the admission policy
and the monitoring files are generated; a stale copy would ship an old schema or old alerts.

No cluster is needed, only the helm and kubectl binaries that `make control-plane` builds; without them
these tests fail (CI builds them first), because a chart that is never rendered is never checked.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from webapp_scaler_dev.devcluster import find_binaries
from webapp_scaler_dev.generate import chart_files
from webapp_scaler_dev.generate.chart_files import Copy

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "webapp-scaler"
RELEASE = ("webapp-scaler", str(CHART), "--namespace", "webapp-scaler")
HELM_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/part-of",
}
WATCHED = ["shop-staging", "shop-production"]  # the namespaces of manifests/namespaced

Object = dict[str, Any]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(find_binaries()["helm"]), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def template(*args: str) -> list[Object]:
    """`helm template` of the chart as release webapp-scaler in namespace webapp-scaler, parsed."""
    return parse(helm("template", *RELEASE, *args).stdout)


def kustomize(overlay: str) -> list[Object]:
    result = subprocess.run(
        [str(find_binaries()["kubectl"]), "kustomize", str(REPO / "manifests" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return parse(result.stdout)


def parse(text: str) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(objects: Iterable[Object], kind: str) -> list[Object]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: Iterable[Object], kind: str) -> Object:
    [found] = of_kind(objects, kind)
    return found


def rule_set(rules: Iterable[Object]) -> set[tuple[str, str, str]]:
    """RBAC rules as (apiGroup, resource, verb) triples: the same rights however the rules are grouped."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def without_helm_labels(obj: Object) -> Object:
    """The object as a kustomize install writes it: no labels or annotations Helm adds."""
    obj = json.loads(json.dumps(obj))
    metadata = obj["metadata"]
    metadata["labels"] = {k: v for k, v in metadata.get("labels", {}).items() if k not in HELM_LABELS}
    annotations = {k: v for k, v in metadata.get("annotations", {}).items() if k != "helm.sh/resource-policy"}
    metadata.pop("annotations", None)
    if annotations:
        metadata["annotations"] = annotations
    return obj


def same_text(value: Any) -> Any:
    """Every string with its whitespace collapsed. kustomize's YAML library re-reads a folded scalar (`>-`)
    whose lines are indented further (the CEL of the admission policy) with an extra blank line, which
    Helm and the YAML spec do not: a difference of whitespace only, meaningless to CEL."""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list):
        return [same_text(v) for v in value]
    if isinstance(value, dict):
        return {k: same_text(v) for k, v in value.items()}
    return value


def watched(objects: Iterable[Object]) -> list[Object]:
    """The Roles (or RoleBindings) of the watched namespaces, without the leader election Lease's."""
    return [o for o in objects if o["metadata"]["namespace"] in WATCHED]


def operator_args(objects: list[Object]) -> list[str]:
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


# ---- lint and generated copies -----------------------------------------------------------------------


def test_helm_lint_strict_is_clean() -> None:
    """`--strict` turns lint warnings into failures; only Chart.yaml's icon (INFO) may be mentioned."""
    result = helm("lint", "--strict", str(CHART), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_chart_and_base_copies_are_byte_equal_to_their_sources() -> None:
    """The CRD, the admission policy, the monitoring files and the manifests/base CRD are generated."""
    assert chart_files.stale() == [], f"stale generated files: run {chart_files.COMMAND}"


def test_monitoring_copies_follow_their_optional_sources(tmp_path: Path) -> None:
    """The copy of an optional source (monitoring/*) must be absent while the source is, and equal once it
    appears: the check fails in both directions, and the generator brings the copy in line."""
    copy = Copy("monitoring/alerts.yaml", "charts/x/files/monitoring/alerts.yaml", optional=True)
    assert chart_files.stale([copy], tmp_path) == []  # neither exists: fine

    target = tmp_path / copy.target
    target.parent.mkdir(parents=True)
    target.write_text("groups: []\n")
    assert chart_files.stale([copy], tmp_path) == [f"{copy.target} exists but its source {copy.source} does not"]
    assert chart_files.write([copy], tmp_path) == [f"removed {copy.target}"]
    assert not target.exists()

    source = tmp_path / copy.source
    source.parent.mkdir(parents=True)
    source.write_text("groups: [{name: a, rules: []}]\n")
    assert chart_files.stale([copy], tmp_path) == [f"{copy.target} is missing (a copy of {copy.source})"]
    target.write_text("groups: []\n")
    assert chart_files.stale([copy], tmp_path) == [f"{copy.target} differs from its source {copy.source}"]
    chart_files.write([copy], tmp_path)
    assert target.read_bytes() == source.read_bytes()
    assert chart_files.stale([copy], tmp_path) == []


def test_a_required_source_may_not_vanish(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"crds/x\.yaml is missing"):
        chart_files.stale([Copy("crds/x.yaml", "charts/x/files/crds/x.yaml")], tmp_path)


# ---- values.schema.json ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("replicaCount=two", "at '/replicaCount': got string, want integer"),
        ("replicas=1", "at '': additional properties 'replicas' not allowed"),
        (
            "image.pullPolicy=Sometimes",
            "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
        ),
        ("watchNamespaces=shop", "at '/watchNamespaces': got string, want array"),
        ("watchNamespaces={Shop_NS}", "at '/watchNamespaces/0': 'Shop_NS' does not match pattern"),
        ("resources=large", "at '/resources': got string, want object"),
        ("resources.limits.memory=lots", "at '/resources/limits/memory'"),
        ("logFormat=xml", "at '/logFormat': value must be one of 'json', 'plain'"),
        ("leaderElection.enabled=yes", "at '/leaderElection/enabled': got string, want boolean"),
        ("peering.enabled=true", "at '': additional properties 'peering' not allowed"),  # kopf peering is gone
        ("leaderElection.leaseDuration=1", "at '/leaderElection/leaseDuration': minimum: got 1, want 2"),
        ("metrics.port=0", "at '/metrics/port': minimum: got 0, want 1"),
        ("crds.kepp=true", "at '/crds': additional properties 'kepp' not allowed"),
    ],
)
def test_schema_rejects_wrong_values_with_helms_error(value: str, error: str) -> None:
    result = helm("template", *RELEASE, "--set", value, check=False)
    assert result.returncode != 0, f"--set {value} was accepted"
    assert "values don't meet the specifications of the schema(s)" in result.stderr, result.stderr
    assert error in result.stderr, result.stderr


def test_two_standalone_replicas_are_refused() -> None:
    """Two standalone operators would both act on every WebAppScaling: the schema refuses them, and the
    template on its own when `--skip-schema-validation` skips values.schema.json."""
    off = ("--set", "leaderElection.enabled=false", "--set", "replicaCount=2")
    result = helm("template", *RELEASE, *off, check=False)
    assert result.returncode != 0 and "at '/replicaCount': value must be 1" in result.stderr, result.stderr
    result = helm("template", *RELEASE, *off, "--skip-schema-validation", check=False)
    assert result.returncode != 0
    assert "replicaCount must be 1 without leader election" in result.stderr, result.stderr


def test_a_renew_deadline_past_the_lease_duration_is_refused() -> None:
    """The leader must stop acting before a standby may take over (client-go checks the same)."""
    result = helm("template", *RELEASE, "--set", "leaderElection.renewDeadline=20", check=False)
    assert result.returncode != 0
    assert "renewDeadline must be shorter than leaderElection.leaseDuration" in result.stderr, result.stderr


# ---- default values = manifests/default ----------------------------------------------------------------


def test_default_values_install_what_manifests_default_installs() -> None:
    """The same objects (the chart installs into its release namespace and creates none), the same
    rights, the same CRD and admission policy, the same operator command line."""
    chart, kustomized = template(), kustomize("default")
    names = {(o["kind"], o["metadata"]["name"]) for o in chart}
    assert names == {(o["kind"], o["metadata"]["name"]) for o in kustomized if o["kind"] != "Namespace"}
    assert rule_set(one(chart, "ClusterRole")["rules"]) == rule_set(one(kustomized, "ClusterRole")["rules"])
    for key in ("roleRef", "subjects"):
        assert one(chart, "ClusterRoleBinding")[key] == one(kustomized, "ClusterRoleBinding")[key]
    source_crd = yaml.safe_load((REPO / "crds" / "webappscaling.yaml").read_text())
    assert without_helm_labels(one(chart, "CustomResourceDefinition")) == without_helm_labels(source_crd)
    for kind in ("CustomResourceDefinition", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        assert same_text(without_helm_labels(one(chart, kind))) == same_text(without_helm_labels(one(kustomized, kind)))
    assert (
        operator_args(chart)[:3]
        == operator_args(kustomized)
        == [
            "operator",
            "--all-namespaces",
            "--log-format=json",
        ]
    )
    leader_role = f"{one(chart, 'ServiceAccount')['metadata']['name']}-leader-election"
    for objects in (chart, kustomized):
        [role] = of_kind(objects, "Role")
        assert role["metadata"] | {"labels": {}} == {"name": leader_role, "namespace": "webapp-scaler", "labels": {}}
    assert rule_set(one(chart, "Role")["rules"]) == rule_set(one(kustomized, "Role")["rules"])
    for key in ("roleRef", "subjects"):
        assert one(chart, "RoleBinding")[key] == one(kustomized, "RoleBinding")[key]


def test_cluster_role_grants_exactly_manifests_default_rbac() -> None:
    """The source of truth for the operator's rights (docs/rbac.md): manifests/default/rbac.yaml."""
    source = parse((REPO / "manifests" / "default" / "rbac.yaml").read_text())
    assert rule_set(one(template(), "ClusterRole")["rules"]) == rule_set(one(source, "ClusterRole")["rules"])
    assert rule_set(one(template(), "Role")["rules"]) == rule_set(one(source, "Role")["rules"])


def test_the_lease_rights_are_the_elections_alone() -> None:
    """Leases in the operator's own namespace only, and no list, watch or delete: the operator reads,
    creates and renews its one Lease (webapp_scaler.leader), nothing else."""
    source = parse((REPO / "manifests" / "default" / "rbac.yaml").read_text())
    assert rule_set(one(source, "Role")["rules"]) == {
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
        ("", "events", "create"),
    }
    assert not any(group == "coordination.k8s.io" for group, _, _ in rule_set(one(source, "ClusterRole")["rules"]))
    assert one(template("--namespace", "ops"), "Role")["metadata"]["namespace"] == "ops"


def test_crd_is_kept_on_uninstall_unless_told_otherwise() -> None:
    crd = one(template(), "CustomResourceDefinition")
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert "annotations" not in one(template("--set", "crds.keep=false"), "CustomResourceDefinition")["metadata"]
    assert of_kind(template("--set", "crds.enabled=false"), "CustomResourceDefinition") == []
    assert of_kind(template("--set", "admissionPolicy.enabled=false"), "ValidatingAdmissionPolicy") == []


def test_deployment_runs_the_operator_hardened() -> None:
    """Non-root as the image's own user, read-only root, no privilege escalation, no capabilities."""
    objects = template()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    user = re.search(r"^USER (\d+)$", (REPO / "Dockerfile").read_text().split("AS operator\n")[1], re.M)
    assert user is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user.group(1))
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["image"] == "ghcr.io/webapp-scaler/operator:0.1.0"  # the chart's appVersion
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9090, "health": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    service = one(objects, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    assert (
        service["spec"]["selector"].items()
        <= one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )


# ---- watching a list of namespaces = manifests/namespaced ----------------------------------------------


def test_watch_namespaces_renders_a_role_per_namespace_and_namespace_args() -> None:
    chart = template("--set", f"watchNamespaces={{{','.join(WATCHED)}}}")
    kustomized = kustomize("namespaced")
    assert [a for a in operator_args(chart) if a.startswith("--namespace")] == [f"--namespace={n}" for n in WATCHED]
    assert "--all-namespaces" not in operator_args(chart)
    assert operator_args(kustomized) == [
        "operator",
        *(f"--namespace={n}" for n in WATCHED),
        "--log-format=json",
    ]

    for objects in (chart, kustomized):
        roles = {r["metadata"]["namespace"]: r for r in watched(of_kind(objects, "Role"))}
        bindings = {b["metadata"]["namespace"]: b for b in watched(of_kind(objects, "RoleBinding"))}
        assert sorted(roles) == sorted(bindings) == sorted(WATCHED)
        for namespace in WATCHED:
            assert bindings[namespace]["roleRef"]["name"] == roles[namespace]["metadata"]["name"]
            assert bindings[namespace]["subjects"] == [
                {"kind": "ServiceAccount", "name": "webapp-scaler", "namespace": "webapp-scaler"}
            ]
    chart_role = rule_set(watched(of_kind(chart, "Role"))[0]["rules"])
    assert chart_role == rule_set(watched(of_kind(kustomized, "Role"))[0]["rules"])
    for objects in (chart, kustomized):  # the Lease's Role in the operator's namespace, as cluster-wide
        [leader] = [r for r in of_kind(objects, "Role") if r["metadata"]["namespace"] == "webapp-scaler"]
        assert ("coordination.k8s.io", "leases", "update") in rule_set(leader["rules"])
    assert rule_set(one(chart, "ClusterRole")["rules"]) == rule_set(one(kustomized, "ClusterRole")["rules"])


def test_watch_namespaces_keeps_cluster_wide_only_what_is_cluster_scoped() -> None:
    """Split, the rights are still exactly those of manifests/default/rbac.yaml; cluster-wide remain
    only reads of CRDs, namespaces, Gateways/GatewayClasses and the self access review."""
    chart = template("--set", f"watchNamespaces={{{','.join(WATCHED)}}}")
    cluster = rule_set(one(chart, "ClusterRole")["rules"])
    namespaced = rule_set(watched(of_kind(chart, "Role"))[0]["rules"])
    assert cluster | namespaced == rule_set(one(template(), "ClusterRole")["rules"])
    assert {resource for _, resource, _ in cluster} == {
        "customresourcedefinitions",
        "namespaces",
        "gateways",
        "gatewayclasses",
        "selfsubjectaccessreviews",
    }
    assert {verb for _, resource, verb in cluster if resource != "selfsubjectaccessreviews"} <= {"get", "list", "watch"}


def test_golden_image_namespaces_get_the_clone_source_grant() -> None:
    """CDI's rule for a cross-namespace clone: create on datavolumes/source where the image lives."""
    chart = template("--set", "goldenImageNamespaces={golden-images}")
    [role] = [r for r in of_kind(chart, "Role") if r["metadata"]["namespace"] == "golden-images"]
    assert ("cdi.kubevirt.io", "datavolumes/source", "create") in rule_set(role["rules"])
    assert {verb for *_, verb in rule_set(role["rules"])} == {"create", "get"}
    [binding] = [b for b in of_kind(chart, "RoleBinding") if not b["metadata"]["name"].endswith("-leader-election")]
    assert binding["metadata"]["namespace"] == "golden-images"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


# ---- leader election -------------------------------------------------------------------------------


def test_leader_election_is_the_default_and_allows_two_replicas_rolling_over() -> None:
    """By default the replicas elect a leader: no --standalone, the Lease flags, the pod's namespace for
    the Lease, and RollingUpdate (a standby starts before the old leader releases the Lease)."""
    objects = template("--set", "replicaCount=2", "--include-crds")
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    args = operator_args(objects)
    assert "--standalone" not in args
    assert {"--lease-name=webapp-scaler", "--lease-duration=15", "--renew-deadline=10", "--retry-period=2"} <= set(args)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # kopf peering is gone: no peering CRDs, objects or rights
    assert of_kind(objects, "CustomResourceDefinition") == of_kind(template(), "CustomResourceDefinition")
    assert not any(o["kind"] in ("ClusterKopfPeering", "KopfPeering") for o in objects)
    assert not any(r[0] == "kopf.dev" for r in rule_set(one(objects, "ClusterRole")["rules"]))
    assert not (CHART / "crds").exists()
    named = template("--set", "leaderElection.leaseName=shop-scaler", "--set", "fullnameOverride=other")
    assert "--lease-name=shop-scaler" in operator_args(named)
    assert "--lease-name=other" in operator_args(template("--set", "fullnameOverride=other"))


def test_without_leader_election_the_operator_is_standalone_and_recreated() -> None:
    objects = template("--set", "leaderElection.enabled=false")
    assert "--standalone" in operator_args(objects)
    assert not any(a.startswith("--lease-duration") for a in operator_args(objects))
    assert one(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}  # never two at once
    # the standalone operator still claims the Lease, to notice a second one: the rights stay
    assert ("coordination.k8s.io", "leases", "update") in rule_set(one(objects, "Role")["rules"])


# ---- monitoring --------------------------------------------------------------------------------------


def test_service_monitor_keeps_the_webappscaling_labels() -> None:
    objects = template("--set", "metrics.serviceMonitor.enabled=true")
    [endpoint] = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["honorLabels"] is True
    selector = one(objects, "ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert selector.items() <= one(objects, "Service")["metadata"]["labels"].items()


def test_prometheus_rule_carries_the_groups_of_monitoring_alerts() -> None:
    source = REPO / "monitoring" / "alerts.yaml"
    result = helm("template", *RELEASE, "--set", "prometheusRule.enabled=true", check=False)
    if not source.exists():
        assert result.returncode != 0 and "monitoring/alerts.yaml" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    rule = one(parse(result.stdout), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(source.read_text())["groups"]
    assert of_kind(template(), "PrometheusRule") == []  # off by default


def test_grafana_dashboard_configmap_holds_monitoring_dashboard() -> None:
    source = REPO / "monitoring" / "dashboard.json"
    result = helm("template", *RELEASE, "--set", "grafanaDashboard.enabled=true", check=False)
    if not source.exists():
        assert result.returncode != 0 and "monitoring/dashboard.json" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    config_map = one(parse(result.stdout), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["webapp-scaler.json"]) == json.loads(source.read_text())
    assert of_kind(template(), "ConfigMap") == []  # off by default
