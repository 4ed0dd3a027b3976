"""`webapp-scaler render`: what the operator would create for a WebAppScaling, without a cluster.

The same parser, defaults and builders as the operator (`webappscaling.parse_valid`, `resources.*`), so
what a GitOps review sees is what the operator applies; the same admission rules with the CRD's
messages (`admission`), so an invalid spec fails here as it would at `kubectl apply`. Pure: documents
in, manifests out; the command (`cli.py`) reads the files and prints.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webapp_scaler import admission, naming, resources, webappscaling
from webapp_scaler.constants import API_VERSION, KIND
from webapp_scaler.load_balancers import GatewayAPI, session_persistence_concern

TOKEN_PLACEHOLDER = "(a random token the operator makes for each VM)"


class RenderError(ValueError):
    """A document that is not a valid WebAppScaling; the message is what admission (or the parser) says."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """The objects for one WebAppScaling, in the order the operator makes them, and notes for the reader."""

    name: str
    namespace: str
    objects: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def render(
    documents: Iterable[Any], *, namespace: str | None = None, gateway_api: GatewayAPI | None = None
) -> list[Rendered]:
    """Every WebAppScaling of `documents` (other kinds are skipped) with what the operator makes for it.
    `namespace`, like kubectl's -n, is used where a document names none (else `default`) and must match
    where one does; `gateway_api` is what the cluster's HTTPRoute CRD serves (default: the experimental
    channel, which has sessionPersistence). Raises `RenderError` on the first invalid WebAppScaling."""
    api = gateway_api or GatewayAPI(installed=True, session_persistence=True, channel="experimental")
    found = []
    for document in documents:
        if not isinstance(document, Mapping) or document.get("kind") != KIND:
            continue
        found.append(_render_one(document, namespace, api))
    return found


def _render_one(document: Mapping[str, Any], namespace: str | None, api: GatewayAPI) -> Rendered:
    body = copy.deepcopy(dict(document))
    meta = dict(body.get("metadata") or {})
    name = str(meta.get("name") or "")
    own = meta.get("namespace")
    where = f"WebAppScaling {own or namespace or 'default'}/{name}"
    if body.get("apiVersion") != API_VERSION:
        raise RenderError(f"{where}: apiVersion must be {API_VERSION}, got {body.get('apiVersion')!r}")
    if not name:
        raise RenderError(f"{where}: metadata.name is required")
    if own and namespace and own != namespace:
        raise RenderError(f"{where}: the document's namespace {own} does not match --namespace {namespace}")
    meta["namespace"] = own or namespace or "default"
    body["metadata"] = meta
    problems = admission.errors(body)
    if problems:
        raise RenderError(f"{where} is invalid: " + "; ".join(problems))
    try:
        was = webappscaling.parse_valid(body)
    except webappscaling.SpecError as error:
        raise RenderError(f"{where} is invalid: {error}") from error

    vm_name = naming.example_vm_name(was.name)
    vm = resources.build_virtualmachine(was, vm_name)
    objects = [vm]
    notes = [
        f"VirtualMachine {vm_name} is one example: the operator names each VM {was.name}-<5 random characters>, "
        "and a warm-pool VM is the same with runStrategy Halted and the annotation webappscaler.io/warm",
    ]
    if was.spec.workload.drain_token is None:
        example_vm = {"metadata": {**vm["metadata"], "uid": ""}}
        objects.append(resources.build_drain_token_secret(was, example_vm, TOKEN_PLACEHOLDER))
        notes.append(f"Secret {naming.drain_token_secret_name(vm_name)} holds a random token per VM, not this text")
    objects.append(resources.build_service(was))
    ingress = resources.build_ingress(was)
    if ingress is not None:
        objects.append(ingress)
    route = resources.build_httproute(was, session_persistence_served=api.session_persistence)
    if route is not None:
        objects.append(route)
        route_spec = was.spec.workload.route
        concern = session_persistence_concern(route_spec, api) if route_spec else None
        if concern is not None:
            notes.append(concern.message)
    if not was.uid:
        notes.append("ownerReferences carry the uid the apiserver gives each owner; it is empty here")
    return Rendered(was.name, was.namespace, objects, notes)
