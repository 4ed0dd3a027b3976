"""The generated KubeVirt/CDI stand-in CRDs: real names, structural schemas, no drift from the generator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from webapp_scaler_dev.generate import standin_crds

CRDS_DIR = standin_crds.OUT_DIR
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(filename: str) -> dict[str, dict[str, Any]]:
    documents = yaml.load_all((CRDS_DIR / filename).read_text(), Loader=FAST_LOADER)
    return {doc["spec"]["names"]["kind"]: doc for doc in documents if doc}


KUBEVIRT = load("kubevirt.yaml")
CDI = load("cdi.yaml")
ALL = {**KUBEVIRT, **CDI}


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its field path, so a failure names the field."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def spec_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = ALL[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    ("kind", "group", "version", "plural", "short_names", "subresources"),
    [
        pytest.param("VirtualMachine", "kubevirt.io", "v1", "virtualmachines", ["vm", "vms"], {"status"}, id="vm"),
        pytest.param(
            "VirtualMachineInstance",
            "kubevirt.io",
            "v1",
            "virtualmachineinstances",
            ["vmi", "vmis"],
            set(),
            id="vmi",
        ),
        pytest.param(
            "VirtualMachineInstanceReplicaSet",
            "kubevirt.io",
            "v1",
            "virtualmachineinstancereplicasets",
            ["vmirs", "vmirss"],
            {"status", "scale"},
            id="vmirs",
        ),
        pytest.param(
            "VirtualMachinePool",
            "pool.kubevirt.io",
            "v1beta1",
            "virtualmachinepools",
            ["vmpool", "vmpools"],
            {"status", "scale"},
            id="vmpool",
        ),
        pytest.param("DataVolume", "cdi.kubevirt.io", "v1beta1", "datavolumes", ["dv", "dvs"], {"status"}, id="dv"),
        pytest.param("DataSource", "cdi.kubevirt.io", "v1beta1", "datasources", ["das"], {"status"}, id="das"),
    ],
)
def test_crd_has_the_real_names_and_subresources(
    kind: str, group: str, version: str, plural: str, short_names: list[str], subresources: set[str]
) -> None:
    crd = ALL[kind]
    assert crd["metadata"]["name"] == f"{plural}.{group}"
    assert crd["spec"]["group"] == group
    assert crd["spec"]["scope"] == "Namespaced"
    names = crd["spec"]["names"]
    assert (names["plural"], names["singular"], names["shortNames"]) == (plural, kind.lower(), short_names)
    assert names["categories"] == ["all"]
    storage = [v for v in crd["spec"]["versions"] if v["storage"]]
    assert [v["name"] for v in storage] == [version]
    for served in crd["spec"]["versions"]:
        assert served["served"] is True
        assert set(served.get("subresources", {})) == subresources


def test_kubevirt_still_serves_v1alpha3_deprecated() -> None:
    for kind in ("VirtualMachine", "VirtualMachineInstance", "VirtualMachineInstanceReplicaSet"):
        old = [v for v in ALL[kind]["spec"]["versions"] if v["name"] == "v1alpha3"]
        assert len(old) == 1
        assert old[0]["deprecated"] is True
        assert old[0]["storage"] is False


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        pytest.param("VirtualMachine", {"Age", "Status", "Ready"}, id="vm"),
        pytest.param("VirtualMachineInstance", {"Age", "Phase", "IP", "NodeName", "Ready"}, id="vmi"),
        pytest.param("DataVolume", {"Phase", "Progress", "Restarts", "Age"}, id="dv"),
    ],
)
def test_printer_columns(kind: str, columns: set[str]) -> None:
    version = ALL[kind]["spec"]["versions"][0]
    shown = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"] if not c.get("priority")}
    assert set(shown) == columns
    paths = {"Status": ".status.printableStatus", "IP": ".status.interfaces[0].ipAddress"}
    paths |= {"Progress": ".status.progress", "Phase": ".status.phase"}
    for name, path in paths.items():
        if name in shown:
            assert shown[name] == path


@pytest.mark.parametrize("kind", sorted(ALL))
def test_schema_is_structural(kind: str) -> None:
    for path, node in schema_nodes(spec_schema(kind)):
        assert "$ref" not in node, path
        assert "default" not in node, path
        typed = "type" in node
        assert typed or node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert not any(key.startswith("x-kubernetes-patch") for key in node), path
        if "anyOf" in node:
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            assert node["x-kubernetes-int-or-string"] is True, path


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        pytest.param("VirtualMachine", ".metadata", {"type": "object"}, id="top-metadata"),
        pytest.param(
            "VirtualMachine",
            ".spec.template.metadata",
            {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            id="template-metadata",
        ),
        pytest.param(
            "VirtualMachine",
            ".spec.dataVolumeTemplates[].metadata",
            {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            id="dv-template-metadata",
        ),
    ],
)
def test_object_metadata(kind: str, path: str, expected: dict[str, Any]) -> None:
    nodes = dict(schema_nodes(spec_schema(kind)))
    assert {k: v for k, v in nodes[path].items() if k != "description"} == expected


def test_status_is_open() -> None:
    for kind in ALL:
        status = spec_schema(kind)["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True, kind


def test_field_types_follow_the_definitions() -> None:
    nodes = dict(schema_nodes(spec_schema("VirtualMachine")))
    domain = ".spec.template.spec.domain"
    assert nodes[".spec.runStrategy"]["type"] == "string"
    assert nodes[f"{domain}.cpu.cores"]["type"] == "integer"
    guest = nodes[f"{domain}.memory.guest"]
    assert guest["x-kubernetes-int-or-string"] is True
    assert guest["pattern"] == standin_crds.QUANTITY_PATTERN
    assert nodes[f"{domain}.resources.requests"]["additionalProperties"]["x-kubernetes-int-or-string"] is True
    assert nodes[".spec.template.spec.nodeSelector"]["additionalProperties"] == {"type": "string"}
    assert "ClusterFirst" in nodes[".spec.template.spec.dnsPolicy"]["enum"]
    assert nodes[".spec"]["required"] == ["template"]
    probe_port = nodes[".spec.template.spec.readinessProbe.httpGet.port"]
    assert probe_port["x-kubernetes-int-or-string"] is True
    assert "Running state" in nodes[".spec.runStrategy"]["description"]

    dv = dict(schema_nodes(spec_schema("DataVolume")))
    assert dv[".spec.source.pvc"]["required"] == ["name", "namespace"]
    assert "ReadWriteOnce" in dv[".spec.storage.accessModes[]"]["enum"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Short.", "Short.", id="short"),
        pytest.param("Line one.\n\n  Line   two.", "Line one. Line two.", id="whitespace"),
        pytest.param("A. " + "b" * 20 + ". " + "c" * 50, "A. " + "b" * 20 + ".", id="sentence-boundary"),
        pytest.param("word " * 20, ("word " * 11).strip() + " ...", id="no-sentence"),
    ],
)
def test_trim_description(text: str, expected: str) -> None:
    assert standin_crds.trim_description(text, limit=60) == expected


def test_union_types_become_structural() -> None:
    converter = standin_crds.SchemaConverter({})
    nullable = converter._node({"type": ["string", "null"]}, ())
    assert nullable == {"type": "string", "nullable": True}
    port = converter._node({"type": ["string", "number"], "description": "Port."}, ())
    assert port["x-kubernetes-int-or-string"] is True
    with pytest.raises(ValueError, match="no structural equivalent"):
        converter._node({"type": ["boolean", "object"]}, ())


def test_recursive_definitions_are_left_open() -> None:
    definitions = {
        "v1.Node": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "child": {"$ref": "#/definitions/v1.Node"}},
        }
    }
    schema = standin_crds.SchemaConverter(definitions).root("v1.Node")
    assert schema["properties"]["name"] == {"type": "string"}
    assert schema["properties"]["child"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_generated_files_match_the_generator() -> None:
    """The committed YAML is exactly what the generator writes (`make generate`), so it never drifts."""
    for filename, text in standin_crds.render_all().items():
        committed = (CRDS_DIR / filename).read_text()
        assert committed == text, f"{filename} is stale: run `{standin_crds.COMMAND}`"
        assert committed.startswith("# GENERATED FILE - DO NOT EDIT.")
        assert "Stand-ins for a real" in committed[:600]
