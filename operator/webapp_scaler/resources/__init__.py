"""Pure builders: a WebAppScaling (its defaulted spec) in, Kubernetes manifests (plain dicts) out.

No I/O and no clock: the same input always gives the same manifest, so a reconcile can compare and
server-side apply without surprises, and unit tests need nothing but a dict.
"""

from webapp_scaler.resources.httproute import build_httproute, route_retry
from webapp_scaler.resources.ingress import build_ingress
from webapp_scaler.resources.owner import controlled_by, owner_reference
from webapp_scaler.resources.service import build_service
from webapp_scaler.resources.virtualmachine import build_drain_token_secret, build_virtualmachine

__all__ = [
    "build_drain_token_secret",
    "build_httproute",
    "build_ingress",
    "build_service",
    "build_virtualmachine",
    "controlled_by",
    "owner_reference",
    "route_retry",
]
