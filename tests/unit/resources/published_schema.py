"""Validate manifests against KubeVirt's and CDI's published OpenAPI definitions (not our stand-ins).

The Swagger 2.0 definitions are JSON schemas with `#/definitions/...` references. KubeVirt and CDI
decode strictly (unknown fields are errors in their admission), so every object definition is closed
with `additionalProperties: false` unless it already says otherwise.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import jsonschema

from tests.conftest import REPO

API = REPO / "devtools" / "emulator" / "kubevirt-api"


def _closed(definitions: dict[str, Any]) -> dict[str, Any]:
    closed = copy.deepcopy(definitions)
    for schema in closed.values():
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    return closed


@functools.cache
def validator(document: str, definition: str) -> jsonschema.Draft4Validator:
    definitions = _closed(json.loads((API / document).read_text())["definitions"])
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    return jsonschema.Draft4Validator(schema)


def errors(document: str, definition: str, manifest: dict[str, Any]) -> list[str]:
    found = validator(document, definition).iter_errors(manifest)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def kubevirt_errors(definition: str, manifest: dict[str, Any]) -> list[str]:
    return errors("kubevirt-v1.9.0-swagger.json", definition, manifest)


def cdi_errors(definition: str, manifest: dict[str, Any]) -> list[str]:
    return errors("cdi-v1.66.0-swagger.json", definition, manifest)
