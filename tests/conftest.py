"""Options shared by every test directory, and how the suite is spread over pytest-xdist workers.

The suite runs on two workers (`-n 2`, pyproject.toml): most tests wait on real processes (an apiserver
starting, a VM booting), so two at a time overlap the waits on two cores. Work is handed out a module at a
time (a module's fixtures start its own control plane once). The modules that run the whole product with
shoppers (the demo stack, the drain matrix, the chaos runs) form one unit: one worker runs them one after
another, so no two of them share the CPU and their session counts measure the product, not the host's
load. The other modules with network-namespace emulators run where a worker is free: emulators share
the host's bridge safely (devtools/emulator/network.py). (pytest-xdist's own `--dist loadgroup` does not
group here — pytest 9.2, pytest-xdist 3.8: the node ids reach its scheduler without their `@group` suffix —
so the grouping is done in the scheduler below.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

WHOLE_STACK_MODULES = frozenset(
    {
        "tests/e2e/test_chaos.py",
        "tests/e2e/test_demo_stack.py",
        "tests/e2e/test_drain_matrix.py",
    }
)


def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class WholeStacksTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "whole-stacks" if module in WHOLE_STACK_MODULES else module

    return WholeStacksTogether(config, log)
