"""The pinned Gateway API CRDs (v1.7.0) in the test apiserver, one release channel at a time.

The dev tools cache them (`webapp_scaler_dev.devcluster.gateway_api_crds`, `make load-balancers`), and
fetch them from the Go module proxy when the cache is empty.
"""

from __future__ import annotations

import json
import time

from tests.integration.conftest import Kubectl
from webapp_scaler_dev.devcluster import gateway_api_crds

KINDS = ("gatewayclasses", "gateways", "httproutes")  # what the operator reads and writes
HTTPROUTE_CRD = "httproutes.gateway.networking.k8s.io"


def install_gateway_api(kubectl: Kubectl, channel: str) -> None:
    """Server-side apply the channel's GatewayClass, Gateway and HTTPRoute CRDs (replacing the other
    channel's) and wait until the apiserver serves the channel's HTTPRoute schema."""
    directory = gateway_api_crds(channel, build=True)
    files = [directory / f"gateway.networking.k8s.io_{kind}.yaml" for kind in KINDS]
    missing = [str(f) for f in files if not f.exists()]
    assert not missing, f"Gateway API CRDs missing: {missing} (make load-balancers)"
    kubectl("apply", "--server-side", "--force-conflicts", *[a for f in files for a in ("-f", str(f))])
    kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{k}.gateway.networking.k8s.io" for k in KINDS]
    )
    deadline = time.monotonic() + 60
    while served_channel(kubectl) != channel:
        assert time.monotonic() < deadline, f"the {channel} channel's HTTPRoute CRD was never served"
        time.sleep(0.5)
    time.sleep(1.0)  # the apiserver swaps the CRD's handler a moment after the object changed


def served_channel(kubectl: Kubectl) -> str:
    crd = json.loads(kubectl("get", "crd", HTTPROUTE_CRD, "-o", "json").stdout)
    return str(crd["metadata"].get("annotations", {}).get("gateway.networking.k8s.io/channel", ""))
