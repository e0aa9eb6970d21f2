"""Cost efficiency: what 1,000 predictions cost on this host, and how much of the time it sat idle.

The host's cores are paid for whether they predict or not, so the window's cost is cores × hours ×
``cost_per_cpu_hour`` and the cost per 1,000 predictions is that over the rows scored (every traffic
source: batch scoring uses the same cores). The idle share is the share of the window's minutes in
which nothing was scored, read from the per-minute rollups.
"""

from __future__ import annotations

import math

from opscore.config import Settings
from opscore.monitoring.health.status import CheckResult
from opscore.serving import telemetry_queries
from opscore.store import Store


def check_cost_efficiency(settings: Settings, store: Store, start: float, end: float, cores: int) -> CheckResult:
    """Cost of the window, cost per 1,000 predictions and idle share, against the configured lines."""
    hours = (end - start) / 3600
    minutes = max(math.ceil((end - start) / 60), 1)
    cost = cores * hours * settings.cost_per_cpu_hour
    rows = int(telemetry_queries.window_percentiles(store, start, end)["rows"])
    per_minute = telemetry_queries.p95_per_minute(store, start, end)
    busy = int((per_minute["count"] > 0).sum())
    idle_share = 1 - min(busy, minutes) / minutes
    per_1000 = cost / rows * 1000 if rows else None
    result = CheckResult(figures={
        "cost_per_cpu_hour": settings.cost_per_cpu_hour, "cores": cores, "window_hours": hours,
        "window_cost": cost, "predictions": rows, "cost_per_1000_predictions": per_1000,
        "cost_per_1000_target": settings.health_cost_per_1000_target or None,
        "busy_minutes": busy, "idle_share": idle_share,
    })
    if not rows:
        result.note(f"no predictions in the last {hours:g} h: cost per 1,000 predictions is not defined")
        return result
    target = settings.health_cost_per_1000_target
    if target > 0 and per_1000 is not None and per_1000 > target:
        result.raise_to("warning", f"1,000 predictions cost {per_1000:.4g}, above the {target:.4g} target "
                                   f"({cores} cores for {hours:g} h at {settings.cost_per_cpu_hour:g} per CPU-hour)",
                        "serve from fewer cores, or move more scoring onto this host")
    if idle_share >= settings.health_idle_share:
        result.raise_to("warning", f"the host sat idle {idle_share:.0%} of the last {hours:g} h "
                                   f"({busy:,} of {minutes:,} minutes had traffic)",
                        "share the host with other work, or scale the service down outside its busy hours")
    return result
