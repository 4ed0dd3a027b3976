"""The benchmark's figure: the sessions, and each policy's ready capacity and VM count over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from webapp_scaler.simulation import run

COLORS = {
    "webapp-scaler": "#d62728",
    "hpa": "#1f77b4",
    "hpa-drain": "#17becf",
    "keda": "#9467bd",
    "patent-sma": "#8c564b",
    "oracle": "#7f7f7f",
}


def plot_run(result: run.Run, path: Path) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 8), sharex=True, height_ratios=(3, 2))
    first = next(iter(result.results.values()))
    hours = np.arange(len(first.sessions)) / 60.0
    top.plot(hours, first.sessions, color="black", linewidth=1.2, label="sessions")
    for name, r in result.results.items():
        n = min(len(hours), len(r.ready_capacity))
        style = {"color": COLORS.get(name), "linewidth": 0.8, "alpha": 0.85}
        top.plot(hours[:n], r.ready_capacity[:n], label=f"{name} ready capacity", **style)
        bottom.plot(hours[:n], r.vms[:n], label=name, **style)
    s = result.settings
    top.set_ylabel(f"sessions / ready capacity ({s.capacity} per VM)")
    top.set_title(
        f"{result.trace.name}: peak {s.peak_vms} VMs at capacity, target {s.target_per_vm:g}/VM, "
        f"boot {s.boot_seconds:g} s, seed {s.seed}"
    )
    top.legend(loc="upper left", fontsize=8, ncol=2)
    bottom.set_ylabel("running VMs")
    bottom.set_xlabel("hours since the scored start")
    bottom.legend(loc="upper left", fontsize=8, ncol=3)
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
