"""The policies the benchmark compares, one module each; `POLICIES` maps the CLI names to them."""

from __future__ import annotations

from collections.abc import Callable

from webapp_scaler_dev.simulation import settings as sim_settings
from webapp_scaler_dev.simulation.policies import (
    base,
    hpa,
    hpa_drain,
    hpa_drain_tuned,
    keda,
    patent_sma,
    webapp_scaler,
)

POLICIES: dict[str, Callable[[sim_settings.SimulationSettings], base.Policy]] = {
    "webapp-scaler": webapp_scaler.WebAppScaler,
    "hpa": hpa.Hpa,
    "hpa-drain": hpa_drain.HpaDrain,
    "hpa-drain-tuned": hpa_drain_tuned.HpaDrainTuned,
    "keda": keda.Keda,
    "patent-sma": patent_sma.PatentSma,
}
ORACLE = "oracle"  # computed from the sessions alone, no fleet: see `oracle.py`
ORACLE_DRAIN = "oracle-drain"  # the session-keeping floor, its own packing simulation: see `oracle.py`
ORACLES = (ORACLE, ORACLE_DRAIN)
NAMES = (*POLICIES, *ORACLES)
