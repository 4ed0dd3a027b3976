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

The longest units are handed out first (longest-first scheduling: the whole-stack unit to one worker, the
scale benchmark to the other, the short modules fill in after), so no long module starts last and runs
alone at the end. xdist's own reordering (by the number of tests in a module) would start them last.
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


LONGEST_FIRST = (
    "whole-stacks",
    "tests/integration/test_scale_benchmark.py",
    "tests/integration/test_reaction_benchmark.py",
)


def _unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return "whole-stacks" if module in WHOLE_STACK_MODULES else module


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """The longest units first, every other test in its collected order (the sort is stable)."""
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_unit(item.nodeid), len(rank)))


def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # keep the order above

    class WholeStacksTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return WholeStacksTogether(config, log)
