"""The `webapp-scaler-dev` command: the local control plane, the trace simulator, the demo, the drain matrix, chaos.

Subcommand modules are imported lazily so that `simulate` does not pay for the Kubernetes client and
`dev-cluster` does not pay for matplotlib.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, help). Each module exposes `configure(parser)` and `run(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "dev-cluster": (
        "webapp_scaler_dev.devcluster.cli",
        "start/stop a local etcd + kube-apiserver + controller-manager",
    ),
    "simulate": (
        "webapp_scaler_dev.simulation.cli",
        "replay a traffic trace through the scaler and the baselines",
    ),
    "demo": ("webapp_scaler_dev.demo.cli", "run the local demo stack"),
    "drain-matrix": (
        "webapp_scaler_dev.drainmatrix.cli",
        "every load balancer x drain mode across a real scale-in: sessions lost, errors",
    ),
    "chaos": (
        "webapp_scaler_dev.chaos.cli",
        "SIGKILL the operator at seeded moments, or stop the control plane, under load: invariants checked",
    ),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webapp-scaler-dev", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the chosen subcommand's module is imported
            importlib.import_module(module).configure(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
