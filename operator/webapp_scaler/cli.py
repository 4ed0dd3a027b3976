"""The `webapp-scaler` command of the operator image: `webapp-scaler operator [flags]` runs the operator,
`webapp-scaler render -f FILE` prints what it would create for a WebAppScaling, without a cluster.

The dev tools (local control plane, simulator, demo) are a separate distribution with their own command,
`webapp-scaler-dev`, so the operator image carries none of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO


def build_parser() -> argparse.ArgumentParser:
    from webapp_scaler import runner

    parser = argparse.ArgumentParser(prog="webapp-scaler", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runner.configure(
        sub.add_parser(
            "operator",
            help="run the operator (kopf) against the current kubeconfig, acting while it holds the leader "
            "election Lease (or at once with --standalone)",
        )
    )
    render = sub.add_parser(
        "render",
        help="print, as YAML, everything the operator would create for a WebAppScaling (no cluster needed)",
        description="Print the VM (one example, with its DataVolume template), its drain-token Secret, the "
        "Service, the Ingress and the HTTPRoute the operator would create, from the same builders and "
        "defaults. Invalid specs fail with admission's messages. Other kinds in the files are skipped.",
    )
    render.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="YAML file (multi-document); - is stdin",
    )
    render.add_argument("-n", "--namespace", help="namespace of documents that name none (default: default)")
    render.add_argument(
        "--gateway-api",
        choices=("experimental", "standard"),
        default="experimental",
        help="the Gateway API channel the cluster serves: standard has no HTTPRoute sessionPersistence "
        "(default: experimental)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "render":
        return render(args, sys.stdin, sys.stdout, sys.stderr)
    from webapp_scaler import runner

    return int(runner.run(args) or 0)


def render(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Read the files, render, print; 1 with the message on the first invalid document or unreadable file."""
    import yaml

    from webapp_scaler.load_balancers import GatewayAPI
    from webapp_scaler.render import RenderError
    from webapp_scaler.render import render as render_documents

    documents = []
    for name in args.filename:
        try:
            text = stdin.read() if name == "-" else Path(name).read_text()
            documents += list(yaml.safe_load_all(text))
        except (OSError, yaml.YAMLError) as error:
            print(f"webapp-scaler render: {name}: {error}", file=stderr)
            return 1
    api = GatewayAPI(installed=True, session_persistence=args.gateway_api == "experimental", channel=args.gateway_api)
    try:
        rendered = render_documents(documents, namespace=args.namespace, gateway_api=api)
    except RenderError as error:
        print(f"webapp-scaler render: {error}", file=stderr)
        return 1
    if not rendered:
        print("webapp-scaler render: no WebAppScaling (webappscaler.io/v1alpha1) in the input", file=stderr)
        return 1
    for one in rendered:
        stdout.write(
            f"# webapp-scaler render: what the operator creates for WebAppScaling {one.namespace}/{one.name}\n"
        )
        for note in one.notes:
            stdout.write(f"# - {note}\n")
        stdout.write(yaml.safe_dump_all(one.objects, sort_keys=False, explicit_start=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
