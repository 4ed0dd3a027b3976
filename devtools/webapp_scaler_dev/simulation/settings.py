"""One frozen set of simulation settings, shared by every policy of a run so that they compare fairly."""

from __future__ import annotations

import dataclasses

from webapp_scaler_dev.simulation import fleet, sessions


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    capacity: int = 100  # sessions a VM serves before users suffer (overload above it)
    target_per_vm: float = 80.0  # the target every policy aims for
    boot_seconds: float = 90.0  # clone + boot of a new VM
    clone_share: float = 0.5  # part of boot_seconds spent cloning (a warm VM skips it)
    boot_jitter: float = 0.2
    peak_vms: int = 40  # the trace is scaled so its expected peak needs this many VMs at capacity
    min_replicas: int = 1
    max_replicas: int = 120  # high enough never to bind at the peak: the comparison is about timing
    step_seconds: float = 15.0
    warmup_seconds: float = 3600.0  # simulated but not scored: every policy starts from min_replicas
    seed: int = 1
    session_model: sessions.SessionModel = dataclasses.field(default_factory=sessions.SessionModel)
    # The custom-metrics pipeline of the HPA/KEDA baselines: Prometheus scrapes each agent this often,
    # the HPA controller syncs this often (kube-controller-manager --horizontal-pod-autoscaler-sync-period).
    prometheus_scrape_seconds: float = 30.0
    hpa_sync_seconds: float = 15.0
    keda_polling_seconds: float = 30.0
    keda_cooldown_seconds: float = 300.0
    # The plain moving-average baseline: scale out above the target, in below this share of it.
    sma_window_seconds: float = 120.0
    sma_lower_share: float = 0.6
    drain_timeout_seconds: float = 3600.0  # for hpa-drain; ours reads its own from the spec defaults
    # hpa-drain-tuned: HPA configured well (scale-down window, metrics read directly at every sync).
    tuned_scale_down_window_seconds: int = 60
    # What a stopped (warm) VM costs per minute, as a fraction of a running one: it keeps its disk, not
    # its CPU and memory. Every clone is paid in full on top (`run.simulate_policy`, `cost_vm_minutes`).
    warm_cost: float = 0.1
    arrivals: sessions.ArrivalMode = "random"  # how a trace step's users fall inside it (see `sessions`)
    dropped_return: bool = True  # a dropped user comes back once as a new session
    # A WebAppScaling `spec` fragment (JSON) merged over our engine's defaults: what-if runs of one setting.
    engine_spec: str = ""

    @property
    def peak_sessions(self) -> float:
        return float(self.peak_vms * self.capacity)

    def fleet_params(self) -> fleet.FleetParams:
        return fleet.FleetParams(
            capacity=self.capacity,
            boot_seconds=self.boot_seconds,
            clone_share=self.clone_share,
            jitter=self.boot_jitter,
        )
