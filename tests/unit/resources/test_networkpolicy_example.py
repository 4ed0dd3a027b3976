"""The NetworkPolicy example guards what the operator really makes: its pod selector matches the labels
every VM of the minimal example carries to its virt-launcher pod, and the ports are the agent's."""

from __future__ import annotations

import yaml

from tests.conftest import REPO
from webapp_scaler import render

EXAMPLES = REPO / "manifests" / "examples"


def test_the_policy_selects_the_vms_and_the_ports_of_the_agent() -> None:
    policy = yaml.safe_load((EXAMPLES / "06-networkpolicy.yaml").read_text())
    [rendered] = render.render(yaml.safe_load_all((EXAMPLES / "02-webappscaling-minimal.yaml").read_text()))
    vm = next(o for o in rendered.objects if o["kind"] == "VirtualMachine")
    pod_labels = vm["spec"]["template"]["metadata"]["labels"]  # copied to the VMI and its virt-launcher pod
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    service = next(o for o in rendered.objects if o["kind"] == "Service")
    [control, users] = policy["spec"]["ingress"]
    assert [p["port"] for p in control["ports"]] == [9100]  # spec.sessions.agent.port's default
    assert "from" in control  # only the operator
    assert [p["port"] for p in users["ports"]] == [service["spec"]["ports"][0]["targetPort"]]
