"""KubeVirt + CDI emulator: plays their part against a real kube-apiserver where KubeVirt cannot run.

`python -m emulator` / `webapp-emulator` runs it; `emulator.run_in_background(kubeconfig, **options)`
runs it as a child process for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.background import run_in_background as run_in_background


def __getattr__(name: str) -> Any:
    # lazy: `python -m emulator.crdgen` must not import the kubernetes client
    if name == "run_in_background":
        from emulator.background import run_in_background

        return run_in_background
    raise AttributeError(name)
