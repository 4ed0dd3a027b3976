"""Every object name the operator makes, in one place, so that no two code paths disagree."""

from __future__ import annotations

import secrets
import string

from webapp_scaler.constants import LABEL_SCALING

_ALPHABET = string.ascii_lowercase + string.digits
SUFFIX_LENGTH = 5  # like Kubernetes' generateName; 36**5 = 60 M names per WebAppScaling


def vm_name(scaling: str) -> str:
    """A new VM name. The suffix is chosen here (not by generateName) because the VM's DataVolume name
    must be known before the VM is created and must be unique per VM."""
    return f"{scaling}-{random_suffix()}"


def random_suffix() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(SUFFIX_LENGTH))


def root_datavolume_name(vm: str, root_disk: str) -> str:
    """One DataVolume per VM, named after it; KubeVirt creates it exactly as named. Trimmed to 63
    characters (a PVC name becomes a label value in CDI)."""
    return f"{vm}-{root_disk}"[:63].rstrip("-")


def drain_token_secret_name(vm: str) -> str:
    """The Secret holding one VM's own drain token (owned by that VM)."""
    return f"{vm}-drain-token"


def service_name(scaling: str) -> str:
    return scaling


def ingress_name(scaling: str) -> str:
    return scaling


def route_name(scaling: str) -> str:
    """The HTTPRoute of spec.route."""
    return scaling


EXAMPLE_SUFFIX = "x" * SUFFIX_LENGTH


def example_vm_name(scaling: str) -> str:
    """The name `webapp-scaler render` shows for a VM; the operator picks a random suffix for each."""
    return f"{scaling}-{EXAMPLE_SUFFIX}"


def selector(scaling: str) -> str:
    return f"{LABEL_SCALING}={scaling}"


def key(namespace: str, name: str) -> str:
    """The in-memory key of one WebAppScaling: always namespace/name."""
    return f"{namespace}/{name}"
