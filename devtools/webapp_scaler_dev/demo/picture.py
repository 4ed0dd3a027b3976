"""The demo's picture: sessions against the ready capacity (ready VMs × target), and the VMs by phase,
over the run, from the monitor's history. What the live table showed, in one image to keep."""

from __future__ import annotations

from pathlib import Path

from webapp_scaler_dev.demo.monitor import History

PHASES = ("Ready", "Draining", "Cloning", "Booting", "Starting", "Creating", "Warm", "Failed")
COLORS = {
    "Ready": "#2ca02c",
    "Draining": "#ff7f0e",
    "Cloning": "#17becf",
    "Booting": "#1f77b4",
    "Starting": "#9edae5",
    "Creating": "#c7c7c7",
    "Warm": "#aec7e8",
    "Failed": "#d62728",
}


def plot_history(history: History, path: Path, *, target_per_vm: int, title: str) -> Path:
    """Two panels sharing the time axis: sessions and capacity on top, VMs by phase (stacked) below.
    matplotlib is imported here: only a finished run pays for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = history.timeline
    if not points:
        raise ValueError("no snapshot was recorded: nothing to draw")
    start = points[0].at
    minutes = [(p.at - start) / 60 for p in points]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=(3, 2))
    top.plot(minutes, [p.sessions for p in points], color="black", linewidth=1.5, label="sessions")
    top.step(
        minutes,
        [p.ready * target_per_vm for p in points],
        where="post",
        color="#2ca02c",
        label=f"capacity (ready VMs × {target_per_vm})",
    )
    top.step(
        minutes,
        [p.desired * target_per_vm for p in points],
        where="post",
        color="#1f77b4",
        linestyle="--",
        linewidth=0.9,
        label=f"wanted (desired VMs × {target_per_vm})",
    )
    top.set_ylabel("sessions")
    top.set_title(title)
    top.legend(loc="upper left", fontsize=9)
    seen = [phase for phase in PHASES if any(dict(p.phases).get(phase) for p in points)]
    seen += sorted({phase for p in points for phase, _ in p.phases} - set(PHASES))
    bottom.stackplot(
        minutes,
        *[[dict(p.phases).get(phase, 0) for p in points] for phase in seen],
        labels=seen,
        colors=[COLORS.get(phase, "#7f7f7f") for phase in seen],
        step="post",
    )
    most = max(sum(count for _, count in p.phases) for p in points)
    bottom.set_ylim(0, most * 1.35 + 0.5)  # room for the legend above the stack
    bottom.set_ylabel("VMs")
    bottom.set_xlabel("minutes since the shoppers started")
    bottom.legend(loc="upper left", fontsize=9, ncol=len(seen) or 1)
    bottom.yaxis.get_major_locator().set_params(integer=True)
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
