"""KubeVirt + CDI emulator: plays their part against a real kube-apiserver where KubeVirt cannot run.

`python -m emulator` / `webapp-emulator` runs it; `emulator.run_in_background(kubeconfig, **options)`
runs it as a child process for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

CRDS_DIR = Path(__file__).resolve().parent / "crds"
"""The KubeVirt/CDI stand-in CRDs to apply before starting the emulator (package data of the dev tools)."""

if TYPE_CHECKING:
    from emulator.background import run_in_background as run_in_background


def __getattr__(name: str) -> Any:
    # lazy: `python -m webapp_scaler_dev.generate.standin_crds` must not import the kubernetes client
    if name == "run_in_background":
        from emulator.background import run_in_background

        return run_in_background
    raise AttributeError(name)
