"""`webapp-emulator`: play KubeVirt and CDI against a real kube-apiserver.

webapp-emulator --kubeconfig PATH [--namespace NS | --all-namespaces] [--clone-seconds S]
    [--boot-seconds S] [--network loopback|netns] [--guest-command CMD]... [--seed N]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from emulator import logs
from emulator.app import Emulator
from emulator.config import DEFAULT_GUEST_COMMANDS, DEFAULT_GUEST_PORTS, NETWORK_MODES, EmulatorConfig

log = logging.getLogger("emulator")


def non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="webapp-emulator",
        description="Emulate KubeVirt and CDI: clone DataVolumes, run VMs as local processes.",
    )
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig of the cluster (default: $KUBECONFIG)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", help="only this namespace")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="every namespace (the default)")
    p.add_argument("--clone-seconds", type=non_negative, default=3.0, help="DataVolume clone duration")
    p.add_argument("--import-seconds", type=non_negative, default=2.0, help="golden image import duration")
    p.add_argument("--boot-seconds", type=non_negative, default=1.5, help="scheduling-to-running delay of a VMI")
    p.add_argument("--jitter", type=non_negative, default=0.2, help="relative spread of the durations")
    p.add_argument("--seed", type=int, default=0, help="seed of the duration jitter")
    p.add_argument(
        "--network",
        choices=NETWORK_MODES,
        default="loopback",
        help="loopback: a 127.x address per VM; netns: a network namespace per VM (root); "
        "served: an address of --served-subnet, which another process answers on (with --light)",
    )
    p.add_argument("--served-subnet", default="10.216.0.0/16", help="VM subnet in served mode")
    p.add_argument("--served-announce", metavar="URL", help="served mode: POST each address and its VMI here")
    p.add_argument("--loopback-base", default="127.77.0.0", help="first address of the loopback range")
    p.add_argument("--netns-subnet", default="10.213.0.0/16", help="VM subnet in netns mode")
    p.add_argument("--bridge", default="wemu0", help="bridge in the root namespace (netns mode)")
    p.add_argument(
        "--guest-command",
        action="append",
        dest="guest_commands",
        metavar="CMD",
        help="a guest process (repeatable); placeholders {ip} {vm} {namespace} {bin} {python}; "
        f"default: {' ; '.join(DEFAULT_GUEST_COMMANDS)}",
    )
    p.add_argument(
        "--guest-port",
        action="append",
        dest="guest_ports",
        type=int,
        metavar="PORT",
        help=f"ports the guest listens on, checked free before an address is used "
        f"(default {' '.join(map(str, DEFAULT_GUEST_PORTS))})",
    )
    p.add_argument("--readiness-path", default="/readyz", help="probe path when a VMI has no readinessProbe")
    p.add_argument("--readiness-port", type=int, default=9100, help="probe port when a VMI has no readinessProbe")
    p.add_argument("--probe-period", type=non_negative, default=1.0, help="probe period without periodSeconds")
    p.add_argument("--stop-grace", type=non_negative, default=5.0, help="seconds from SIGTERM to SIGKILL")
    p.add_argument("--node-name", default="emulated-node", help="name of the emulated Node")
    p.add_argument("--workers", type=int, default=4, help="reconcile threads")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/webapp-emulator"), help="guest logs go here")
    p.add_argument(
        "--light",
        action="store_true",
        help="objects only (fleets of thousands): no guest processes, probes or Events; a VMI is Ready once running",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        clone_seconds=args.clone_seconds,
        import_seconds=args.import_seconds,
        boot_seconds=args.boot_seconds,
        jitter=args.jitter,
        seed=args.seed,
        network=args.network,
        loopback_base=args.loopback_base,
        netns_subnet=args.netns_subnet,
        bridge=args.bridge,
        served_subnet=args.served_subnet,
        served_announce=args.served_announce,
        guest_commands=tuple(args.guest_commands or DEFAULT_GUEST_COMMANDS),
        guest_ports=tuple(args.guest_ports or DEFAULT_GUEST_PORTS),
        readiness_path=args.readiness_path,
        readiness_port=args.readiness_port,
        probe_period=args.probe_period,
        stop_grace=args.stop_grace,
        node_name=args.node_name,
        workers=max(1, args.workers),
        workdir=args.workdir,
        log_level=args.log_level,
        light=args.light,
        progress_steps=1 if args.light else EmulatorConfig.progress_steps,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    config = config_from(args)
    try:
        emulator = Emulator(config)
    except Exception as error:  # a bad kubeconfig, mostly
        log.error("cannot start", extra=logs.fields(error=str(error)))
        return 2

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra=logs.fields(signal=signal.Signals(signum).name))
        emulator.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner = threading.Thread(target=emulator.run, name="emulator")
    runner.start()
    while runner.is_alive():  # the main thread stays free for signals
        runner.join(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
