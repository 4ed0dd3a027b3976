"""Write docs/api-reference.md from crds/webappscaling.yaml, so the reference never drifts from the schema.

Run: python -m webapp_scaler_dev.generate.api_reference   (tests/unit/test_docs.py fails when the file is stale)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
CRD = REPO / "crds" / "webappscaling.yaml"
OUT = REPO / "docs" / "api-reference.md"

HEADER = """# WebAppScaling API reference (`webappscaler.io/v1alpha1`)

Generated from `crds/webappscaling.yaml` by `python -m webapp_scaler_dev.generate.api_reference`; do not edit by hand.
`kubectl explain was.spec --recursive` shows the same descriptions from a live cluster.
Admission rules (CEL) are listed after the fields; a violation is rejected with the message shown.

| field | type | default | description |
|---|---|---|---|
"""


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "quantity"
    kind = node.get("type", "object")
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if "enum" in node:
        return " \\| ".join(str(v) for v in node["enum"])
    if kind == "object" and "additionalProperties" in node:
        return "map[string]string"
    return str(kind)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(node: dict[str, Any], path: str, rows: list[str], rules: list[str]) -> None:
    for rule in node.get("x-kubernetes-validations", []):
        rules.append(f"| `{path or '.'}` | `{_cell(rule['rule'])}` | {_cell(rule['message'])} |")
    properties = node.get("properties") or (node.get("items") or {}).get("properties") or {}
    for rule in (node.get("items") or {}).get("x-kubernetes-validations", []):
        rules.append(f"| `{path}[]` | `{_cell(rule['rule'])}` | {_cell(rule['message'])} |")
    for name, child in properties.items():
        child_path = f"{path}.{name}" if path else name
        if child_path in ("apiVersion", "kind", "metadata"):
            continue
        default = child.get("default")
        shown = "" if default in (None, {}) else f"`{json.dumps(default)}`"
        description = _cell(str(child.get("description", "")))
        rows.append(f"| `{child_path}` | {_type(child)} | {shown} | {description} |")
        _rows(child, child_path, rows, rules)


def render() -> str:
    crd = yaml.safe_load(CRD.read_text())
    version = crd["spec"]["versions"][0]
    rows: list[str] = []
    rules: list[str] = []
    _rows(version["schema"]["openAPIV3Schema"], "", rows, rules)
    columns = "\n".join(
        f"| {c['name']} | `{c['jsonPath']}` | {c.get('description', '')} |" for c in version["additionalPrinterColumns"]
    )
    scale = version["subresources"]["scale"]
    return (
        HEADER
        + "\n".join(rows)
        + "\n\n## Admission rules\n\n| on | rule | message |\n|---|---|---|\n"
        + "\n".join(rules)
        + "\n\n## `kubectl get was` columns\n\n| column | from | meaning |\n|---|---|---|\n"
        + columns
        + f"\n\n## /scale subresource\n\nspec replicas: `{scale['specReplicasPath']}`, status replicas: "
        f"`{scale['statusReplicasPath']}`, selector: `{scale['labelSelectorPath']}`.\n"
    )


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT.relative_to(REPO)}\n")
