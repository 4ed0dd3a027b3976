"""The `webapp-scaler` command of the operator image: `webapp-scaler operator [flags]`.

The dev tools (local control plane, simulator, demo) are a separate distribution with their own command,
`webapp-scaler-dev`, so the operator image carries none of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from webapp_scaler import runner

    parser = argparse.ArgumentParser(prog="webapp-scaler", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runner.configure(sub.add_parser("operator", help="run the operator (kopf) against the current kubeconfig"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from webapp_scaler import runner

    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return int(runner.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
