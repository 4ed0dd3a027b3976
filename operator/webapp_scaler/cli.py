"""The `webapp-scaler` command: one subcommand per job, each living in the module that owns the job.

Subcommand modules are imported lazily so that `webapp-scaler simulate` does not pay for kopf and
`webapp-scaler operator` does not pay for matplotlib.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, help). Each module exposes `configure(parser)` and `run(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "operator": ("webapp_scaler.runner", "run the operator (kopf) against the current kubeconfig"),
    "dev-cluster": (
        "webapp_scaler.devcluster.cli",
        "start/stop a local etcd + kube-apiserver + controller-manager",
    ),
    "simulate": (
        "webapp_scaler.simulation.cli",
        "replay a traffic trace through the scaler and the baselines",
    ),
    "demo": ("webapp_scaler.demo.cli", "run the local demo stack"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webapp-scaler", description=__doc__.splitlines()[0])
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
