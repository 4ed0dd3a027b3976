"""The emulator's settings: one frozen object built from the command line, passed to every part."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

NETWORK_MODES = ("loopback", "netns", "served")

# The guest of every VM: the sample web shop behind the session agent, as the golden image's systemd
# units start them. `{ip}` is the VM's own address; every VM listens on the same ports, like real VMs.
DEFAULT_GUEST_COMMANDS = (
    "{bin}/webshop --listen {ip}:8081",
    "{bin}/session-agent --listen {ip}:8080 --upstream http://{ip}:8081 --metrics-listen {ip}:9100",
)
DEFAULT_GUEST_PORTS = (8080, 8081, 9100)
DEFAULT_READINESS = ("/readyz", 9100)  # the session agent's readiness, when the VMI has no probe


@dataclass(frozen=True)
class EmulatorConfig:
    kubeconfig: Path | None = None
    namespace: str | None = None
    """Only this namespace; None watches all namespaces."""
    clone_seconds: float = 3.0
    import_seconds: float = 2.0
    boot_seconds: float = 1.5
    jitter: float = 0.2
    """Relative spread of clone, import and boot times (seeded, per object name)."""
    progress_steps: int = 8
    seed: int = 0
    network: str = "loopback"
    loopback_base: str = "127.77.0.0"
    netns_subnet: str = "10.213.0.0/16"
    bridge: str = "wemu0"
    served_subnet: str = "10.216.0.0/16"
    """`--network served`: the subnet another process answers on (with `light`)."""
    served_announce: str | None = None
    """`--network served`: a URL each address is POSTed to with its VMI before use, and when freed."""
    guest_commands: tuple[str, ...] = DEFAULT_GUEST_COMMANDS
    guest_ports: tuple[int, ...] = DEFAULT_GUEST_PORTS
    readiness_path: str = DEFAULT_READINESS[0]
    readiness_port: int = DEFAULT_READINESS[1]
    probe_period: float = 1.0
    """Readiness probe period when the VMI's probe does not set periodSeconds."""
    stop_grace: float = 5.0
    """Seconds a guest gets between SIGTERM and SIGKILL (KubeVirt's grace period is longer)."""
    node_name: str = "emulated-node"
    workers: int = 4
    workdir: Path = field(default_factory=lambda: Path("/tmp/webapp-emulator"))
    """Guest logs go to `workdir/guests/`."""
    log_level: str = "info"
    light: bool = False
    """Objects only, for fleets of thousands: no guest processes, no readiness probes, no Events, one
    progress step per DataVolume; a VMI is Ready as soon as it runs. Its address is served by something
    else (the scale benchmark's agent farm), so no port of it is checked free."""

    def guest_argvs(self, values: dict[str, str]) -> list[list[str]]:
        if self.light:
            return []
        """The guest's commands with `{ip}`, `{vm}`, `{namespace}`, `{volumes}`, `{bin}`, `{python}` filled in
        (`{volumes}/<volume>/<key>`: the keys of the VMI's Secret volumes)."""
        values = {"bin": str(Path(sys.executable).parent), "python": sys.executable, **values}
        return [[part.format(**values) for part in shlex.split(command)] for command in self.guest_commands]
