"""Generate the KubeVirt and CDI stand-in CRDs from the published OpenAPI (Swagger 2.0) definitions.

The test control plane has no KubeVirt or CDI, yet the operator's VirtualMachines and DataVolumes must be
validated there exactly as a cluster with KubeVirt/CDI would validate them. KubeVirt and CDI derive their
own CRD schemas from the same Go types the swagger documents describe, so converting the vendored
definitions (`devtools/emulator/kubevirt-api/*.json`) into structural CRD schemas gives the real
kube-apiserver the same field names, types, enums and required fields.

Run `python -m webapp_scaler_dev.generate.standin_crds` (or `make generate`) to regenerate
`devtools/emulator/crds/*.yaml`; a unit test checks they never drift.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

import emulator

OUT_DIR = emulator.CRDS_DIR  # the stand-ins live with the emulator
API_DIR = OUT_DIR.parent / "kubevirt-api"  # read from the checkout only: not package data
COMMAND = "python -m webapp_scaler_dev.generate.standin_crds"

KUBEVIRT_SWAGGER = "kubevirt-v1.9.0-swagger.json"
CDI_SWAGGER = "cdi-v1.66.0-swagger.json"

Schema = dict[str, Any]

MAX_DESCRIPTION = 800
"""Longest description kept, in characters: enough for `kubectl explain`, small enough for etcd."""

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""The pattern controller-gen puts on every resource.Quantity, so "lots" is rejected as it is by KubeVirt."""

KEPT_KEYWORDS = (
    "format",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "nullable",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
)
"""Swagger keywords a CRD schema accepts unchanged. Everything else not handled explicitly is dropped:
`default` (KubeVirt's CRDs carry none; its webhooks default), `x-kubernetes-patch-*` (not CRD keywords)."""

GENERATED_HEADER = """\
# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m webapp_scaler_dev.generate.standin_crds`.
#
# Stand-ins for a real {product} install: the test control plane has no {product}, so these CRDs
# give the real kube-apiserver the {product} kinds we use, with structural schemas converted from
# {product}'s published OpenAPI definitions (devtools/emulator/kubevirt-api/{source}).
# They carry no controllers: the emulator (devtools/emulator/) plays {product}'s part.
"""


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0

    def render(self) -> Schema:
        column: Schema = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")


@dataclasses.dataclass(frozen=True)
class ScaleSubresource:
    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str


@dataclasses.dataclass(frozen=True)
class KindSpec:
    """One stand-in CRD: the real names, versions and subresources of a KubeVirt/CDI kind."""

    definition: str
    group: str
    version: str
    kind: str
    plural: str
    short_names: tuple[str, ...]
    columns: tuple[PrinterColumn, ...]
    status_subresource: bool
    scale: ScaleSubresource | None = None
    categories: tuple[str, ...] = ("all",)
    deprecated_versions: tuple[str, ...] = ()
    """Older versions the real API still serves with the same schema (KubeVirt's kubevirt.io/v1alpha3)."""


V1ALPHA3_WARNING = "kubevirt.io/v1alpha3 is now deprecated and will be removed in a future release."

REPLICA_COLUMNS = (
    PrinterColumn("Desired", "integer", ".spec.replicas", "Number of desired VirtualMachines"),
    PrinterColumn("Current", "integer", ".status.replicas", "Number of managed and not final or deleted"),
    PrinterColumn("Ready", "integer", ".status.readyReplicas", "Number of managed VirtualMachines ready"),
    AGE,
)

KUBEVIRT_KINDS = (
    KindSpec(
        definition="v1.VirtualMachine",
        group="kubevirt.io",
        version="v1",
        kind="VirtualMachine",
        plural="virtualmachines",
        short_names=("vm", "vms"),
        columns=(
            AGE,
            PrinterColumn("Status", "string", ".status.printableStatus", "Human Readable Status"),
            PrinterColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
        ),
        status_subresource=True,
        deprecated_versions=("v1alpha3",),
    ),
    KindSpec(
        definition="v1.VirtualMachineInstance",
        group="kubevirt.io",
        version="v1",
        kind="VirtualMachineInstance",
        plural="virtualmachineinstances",
        short_names=("vmi", "vmis"),
        columns=(
            AGE,
            PrinterColumn("Phase", "string", ".status.phase"),
            PrinterColumn("IP", "string", ".status.interfaces[0].ipAddress"),
            PrinterColumn("NodeName", "string", ".status.nodeName"),
            PrinterColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
            PrinterColumn(
                "Live-Migratable",
                "string",
                ".status.conditions[?(@.type=='LiveMigratable')].status",
                priority=1,
            ),
            PrinterColumn("Paused", "string", ".status.conditions[?(@.type=='Paused')].status", priority=1),
        ),
        status_subresource=False,
        deprecated_versions=("v1alpha3",),
    ),
    KindSpec(
        definition="v1.VirtualMachineInstanceReplicaSet",
        group="kubevirt.io",
        version="v1",
        kind="VirtualMachineInstanceReplicaSet",
        plural="virtualmachineinstancereplicasets",
        short_names=("vmirs", "vmirss"),
        columns=(
            PrinterColumn("Desired", "integer", ".spec.replicas", "Number of desired VirtualMachineInstances"),
            PrinterColumn("Current", "integer", ".status.replicas", "Number of managed and not final or deleted"),
            PrinterColumn("Ready", "integer", ".status.readyReplicas", "Number of managed VMIs which are ready"),
            AGE,
        ),
        status_subresource=True,
        scale=ScaleSubresource(".spec.replicas", ".status.replicas", ".status.labelSelector"),
        deprecated_versions=("v1alpha3",),
    ),
    KindSpec(
        definition="v1beta1.VirtualMachinePool",
        group="pool.kubevirt.io",
        version="v1beta1",
        kind="VirtualMachinePool",
        plural="virtualmachinepools",
        short_names=("vmpool", "vmpools"),
        columns=REPLICA_COLUMNS,
        status_subresource=True,
        scale=ScaleSubresource(".spec.replicas", ".status.replicas", ".status.labelSelector"),
    ),
)

CDI_KINDS = (
    KindSpec(
        definition="v1beta1.DataVolume",
        group="cdi.kubevirt.io",
        version="v1beta1",
        kind="DataVolume",
        plural="datavolumes",
        short_names=("dv", "dvs"),
        columns=(
            PrinterColumn("Phase", "string", ".status.phase", "The phase the data volume is in"),
            PrinterColumn(
                "Progress",
                "string",
                ".status.progress",
                "Transfer progress in percentage if known, N/A otherwise",
            ),
            PrinterColumn(
                "Restarts",
                "integer",
                ".status.restartCount",
                "The number of times the transfer has been restarted.",
            ),
            AGE,
        ),
        status_subresource=True,
    ),
    KindSpec(
        definition="v1beta1.DataSource",
        group="cdi.kubevirt.io",
        version="v1beta1",
        kind="DataSource",
        plural="datasources",
        short_names=("das",),
        columns=(),
        status_subresource=True,
    ),
)


@dataclasses.dataclass(frozen=True)
class Bundle:
    """One generated file: the CRDs of one product, converted from one swagger document."""

    filename: str
    product: str
    swagger: str
    kinds: tuple[KindSpec, ...]


BUNDLES = (
    Bundle("kubevirt.yaml", "KubeVirt v1.9.0", KUBEVIRT_SWAGGER, KUBEVIRT_KINDS),
    Bundle("cdi.yaml", "CDI v1.66.0", CDI_SWAGGER, CDI_KINDS),
)


def trim_description(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """The description's first sentences up to `limit` characters, on one line."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind(".\t"))
    if end >= limit // 3:
        return cut[: end + 1]
    cut = cut[: limit - len(" ...")]
    return cut[: cut.rfind(" ")].rstrip(",;:") + " ..."


def definition_kind(name: str) -> str:
    """The Go type name of a definition: `k8s.io.apimachinery.pkg.api.resource.Quantity` is Quantity."""
    return name.rsplit(".", 1)[-1]


class SchemaConverter:
    """Turns swagger definitions into structural CRD schemas.

    Structural means: every node typed (or int-or-string / preserve-unknown-fields), no `$ref`, no
    `additionalProperties` next to `properties`, and value-validation-only `anyOf`. The apiserver rejects
    anything else.
    """

    def __init__(self, definitions: Mapping[str, Schema]) -> None:
        self._definitions = definitions

    def root(self, name: str) -> Schema:
        """The openAPIV3Schema of a top-level kind: metadata left to the apiserver, status kept open."""
        schema = self._definition(name, stack=(name,))
        properties = schema.setdefault("properties", {})
        if "metadata" in properties:
            properties["metadata"] = {"type": "object"}
        if "status" in properties:
            properties["status"] = self._open_object(properties["status"].get("description", ""))
        return schema

    def _definition(self, name: str, stack: tuple[str, ...]) -> Schema:
        if name not in self._definitions:
            raise KeyError(f"swagger has no definition {name!r}")
        return self._node(self._definitions[name], stack)

    def _node(self, node: Mapping[str, Any], stack: tuple[str, ...]) -> Schema:
        description = trim_description(node.get("description", ""))
        if "$ref" in node:
            schema = self._ref(node["$ref"], stack)
            if description:
                schema["description"] = description
            return schema
        schema = {}
        if description:
            schema["description"] = description
        node_type = node.get("type")
        if isinstance(node_type, list):
            node_type, nullable = self._union(node_type)
            if node_type == "int-or-string":
                return self._int_or_string(description)
            if nullable:
                schema["nullable"] = True
        if node_type is None and ("properties" in node or "additionalProperties" in node):
            node_type = "object"
        if node_type is None:
            return self._open_object(description)
        schema["type"] = node_type
        for keyword in KEPT_KEYWORDS:
            if keyword in node:
                schema[keyword] = node[keyword]
        if node.get("format") == "int-or-string":
            return self._int_or_string(description)
        if node_type == "array":
            schema["items"] = self._node(node.get("items", {}), stack)
        if node_type == "object":
            self._object(node, schema, stack)
        return schema

    @staticmethod
    def _union(types: Sequence[str]) -> tuple[str, bool]:
        """A swagger type list as one CRD type: `[string, null]` is a nullable string, `[string, number]`
        (a port by name or number) is int-or-string."""
        nullable = "null" in types
        rest = sorted(set(types) - {"null"})
        if len(rest) == 1:
            return rest[0], nullable
        if rest in (["integer", "string"], ["number", "string"]):
            return "int-or-string", nullable
        raise ValueError(f"swagger type {types} has no structural equivalent")

    def _object(self, node: Mapping[str, Any], schema: Schema, stack: tuple[str, ...]) -> None:
        properties: Mapping[str, Any] = node.get("properties", {})
        additional = node.get("additionalProperties")
        if properties:
            schema["properties"] = {
                field: self._property(field, value, stack) for field, value in sorted(properties.items())
            }
            if node.get("required"):
                schema["required"] = sorted(node["required"])
        elif isinstance(additional, Mapping):
            schema["additionalProperties"] = self._node(additional, stack)
        elif additional is True:
            schema["x-kubernetes-preserve-unknown-fields"] = True

    def _property(self, field: str, node: Mapping[str, Any], stack: tuple[str, ...]) -> Schema:
        ref = node.get("$ref", "")
        if ref and field == "status" and definition_kind(ref).endswith("Status"):
            return self._open_object(node.get("description", ""))
        return self._node(node, stack)

    def _ref(self, ref: str, stack: tuple[str, ...]) -> Schema:
        name = ref.removeprefix("#/definitions/")
        kind = definition_kind(name)
        if kind == "ObjectMeta":
            # Embedded metadata (templates): the controller that stamps out the object validates it.
            return self._open_object("")
        if kind == "Quantity":
            schema = self._int_or_string("")
            schema["pattern"] = QUANTITY_PATTERN
            return schema
        if kind == "IntOrString":
            return self._int_or_string("")
        if kind in ("RawExtension", "FieldsV1"):
            return self._open_object("")
        if name in stack:
            # A structural schema cannot recurse; the recursive part stays open.
            return self._open_object("")
        return self._definition(name, (*stack, name))

    @staticmethod
    def _int_or_string(description: str) -> Schema:
        schema: Schema = {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
        }
        if description:
            schema = {"description": description, **schema}
        return schema

    @staticmethod
    def _open_object(description: str) -> Schema:
        schema: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if description:
            schema = {"description": trim_description(description), **schema}
        return schema


def build_crd(kind: KindSpec, converter: SchemaConverter, product: str, swagger: str) -> Schema:
    """A CustomResourceDefinition with the real names, versions, columns and subresources of `kind`."""
    schema = converter.root(kind.definition)
    names: Schema = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.kind.lower(),
        "shortNames": list(kind.short_names),
        "categories": list(kind.categories),
    }
    subresources: Schema = {}
    if kind.status_subresource:
        subresources["status"] = {}
    if kind.scale:
        subresources["scale"] = {
            "specReplicasPath": kind.scale.spec_replicas_path,
            "statusReplicasPath": kind.scale.status_replicas_path,
            "labelSelectorPath": kind.scale.label_selector_path,
        }
    versions = [_version(kind, kind.version, schema, subresources, storage=True)]
    versions += [_version(kind, old, schema, subresources, storage=False) for old in kind.deprecated_versions]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{kind.group}",
            "labels": {"app.kubernetes.io/part-of": "webapp-scaler-emulator"},
            "annotations": {
                "webappscaler.io/stand-in-for": product,
                "webappscaler.io/generated-from": f"{swagger}#/definitions/{kind.definition}",
            },
        },
        "spec": {"group": kind.group, "names": names, "scope": "Namespaced", "versions": versions},
    }


def _version(kind: KindSpec, name: str, schema: Schema, subresources: Schema, *, storage: bool) -> Schema:
    version: Schema = {"name": name, "served": True, "storage": storage}
    if not storage:
        version["deprecated"] = True
        version["deprecationWarning"] = V1ALPHA3_WARNING
    version["schema"] = {"openAPIV3Schema": schema}
    if subresources:
        version["subresources"] = subresources
    if kind.columns:
        version["additionalPrinterColumns"] = [column.render() for column in kind.columns]
    return version


class _NoAliasDumper(yaml.SafeDumper):
    """Repeated sub-schemas are written out in full: anchors would make the files hard to read and diff."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_bundle(bundle: Bundle, api_dir: Path = API_DIR) -> str:
    """The YAML text of one generated file."""
    definitions = json.loads((api_dir / bundle.swagger).read_text())["definitions"]
    converter = SchemaConverter(definitions)
    documents = [build_crd(kind, converter, bundle.product, bundle.swagger) for kind in bundle.kinds]
    body = yaml.dump_all(
        documents,
        Dumper=_NoAliasDumper,
        sort_keys=False,
        default_flow_style=False,
        width=120,
        explicit_start=True,
    )
    product = bundle.product.split(" ")[0]
    return GENERATED_HEADER.format(product=product, source=bundle.swagger) + body


def render_all(api_dir: Path = API_DIR) -> dict[str, str]:
    """File name -> YAML text, for every generated file."""
    return {bundle.filename: render_bundle(bundle, api_dir) for bundle in BUNDLES}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="directory for the generated YAML")
    parser.add_argument("--check", action="store_true", help="fail if the files on disk differ")
    args = parser.parse_args(argv)
    stale = []
    for filename, text in render_all().items():
        path: Path = args.out / filename
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(filename)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        compact = sum(len(json.dumps(doc, separators=(",", ":"))) for doc in yaml.safe_load_all(text) if doc)
        print(f"{path}: {len(text):,} bytes of YAML, {compact:,} bytes as JSON", file=sys.stderr)
    if stale:
        print(f"out of date, run `{COMMAND}`: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
