"""The benchmark's figure: the sessions, and each policy's ready capacity and cost over time.

The middle panel is the cost rate (`cost_vm_minutes` per minute: running VMs, stopped warm VMs at the
warm cost, clones in full), and every legend entry carries the policy's total cost, because that, not
the running VM count, is what the comparisons use."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from webapp_scaler_dev.simulation import run

COLORS = {
    "webapp-scaler": "#d62728",
    "hpa": "#1f77b4",
    "hpa-drain": "#17becf",
    "hpa-drain-tuned": "#2ca02c",
    "keda": "#9467bd",
    "patent-sma": "#8c564b",
    "oracle": "#7f7f7f",
    "oracle-drain": "#bcbd22",
}


def plot_run(result: run.Run, path: Path, *, zoom_hours: float = 6.0) -> None:
    """Three panels: sessions and ready capacity, running VMs, and a close-up around the busiest hour
    (a week of minutes is too dense to see how each policy meets a surge)."""
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(14, 11), height_ratios=(3, 2, 3))
    first = next(iter(result.results.values()))
    hours = np.arange(len(first.sessions)) / 60.0
    peak = float(hours[int(np.argmax(first.sessions))]) if len(hours) else 0.0
    zoom = (hours >= peak - zoom_hours / 2) & (hours <= peak + zoom_hours / 2)
    for axis, mask in ((top, slice(None)), (bottom, zoom)):
        axis.plot(hours[mask], first.sessions[mask], color="black", linewidth=1.4, label="sessions")
    for name, r in result.results.items():
        n = min(len(hours), len(r.ready_capacity))
        style = {"color": COLORS.get(name), "linewidth": 0.8, "alpha": 0.85}
        top.plot(hours[:n], r.ready_capacity[:n], label=f"{name} ready capacity", **style)
        cost = r.cost_rate
        middle.plot(hours[:n], cost[:n], label=f"{name}: {r.metrics['cost_vm_minutes']:,.0f}", **style)
        bottom.plot(hours[:n][zoom[:n]], r.ready_capacity[:n][zoom[:n]], label=name, **style)
    s = result.settings
    top.set_title(
        f"{result.trace.name}: peak {s.peak_vms} VMs at capacity, target {s.target_per_vm:g}/VM, "
        f"boot {s.boot_seconds:g} s, seed {s.seed}, {s.arrivals} arrivals, warm cost {s.warm_cost:g}"
    )
    top.set_ylabel(f"sessions / ready capacity\n({s.capacity} per VM)")
    top.legend(loc="upper left", fontsize=8, ncol=2)
    middle.set_ylabel(f"cost rate (VMs; stopped\nwarm VMs × {s.warm_cost:g})")
    middle.legend(loc="upper left", fontsize=8, ncol=3, title="cost VM-minutes", title_fontsize=8)
    middle.set_xlabel("hours since the scored start")
    bottom.set_ylabel("sessions / ready capacity")
    bottom.set_xlabel(f"hours since the scored start: {zoom_hours:g} h around the busiest minute")
    bottom.legend(loc="upper left", fontsize=8, ncol=3)
    for axis in (top, middle, bottom):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
