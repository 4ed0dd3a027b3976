"""Scale benchmark: one operator replica against N WebAppScalings of M VMs each (docs/benchmarks.md).

A real etcd + kube-apiserver + kube-controller-manager; the emulator in light mode (VM, VMI, pod and
DataVolume objects with their status, no guest processes); one agent-farm process serving every VM's
session agent on the VM's own loopback address, with a load plan that makes objects rise and fall; the
operator as its own process, under its own user, whose every request the apiserver's audit log records.

    python benchmarks/scale.py --objects 10 --vms-per-object 10 --minutes 2 --json OUT
    python benchmarks/scale.py --plot docs/bench/scale-*.json --out docs/bench/scale.png
"""

from __future__ import annotations

import sys

from webapp_scaler_dev.scale.cli import main

if __name__ == "__main__":
    sys.exit(main())
