"""Daily performance trend: is p95 latency drifting up, day after day, beyond what noise explains?

One p95 per day for the last ``days`` days (default 7), each from that day's latency rollups (the
same histograms the Latency page reads), then a least-squares slope in ms per day with its confidence
interval. A slope whose whole interval is above zero is a finding; a single slow day is not.
"""

from __future__ import annotations

import time
from typing import Any

from opscore.config import Settings
from opscore.operations.linear_trend import fit_line
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure
from opscore.serving.telemetry_queries import window_percentiles
from opscore.store import open_store

DAY = 86_400.0


def daily_p95(settings: Settings, days: int, now: float, source: str = "api") -> list[dict[str, Any]]:
    """p95 request latency and requests of each of the last ``days`` whole days (UTC) with traffic."""
    store = open_store(settings)
    today = now // DAY * DAY
    found = []
    for back in range(days, 0, -1):
        start = today - back * DAY
        figures = window_percentiles(store, start, start + DAY, source=source)
        if figures["count"]:
            found.append({"day_start": start, "p95_ms": figures["p95_ms"], "requests": figures["count"]})
    return found


@procedure("performance_trend", title="Performance trend: slope of daily p95 latency", maintenance_set="daily",
           estimated_seconds=5)
def performance_trend(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    days = int(params.get("days", 7))
    now = float(params.get("now", time.time()))
    checkpoint("daily p95 from the latency rollups", 0.0)
    series = daily_p95(settings, days, now)
    figures: dict[str, Any] = {"days": series, "window_days": days}
    if len(series) < 3:
        return ProcedureResult(figures, recommendations=[
            f"only {len(series)} of the last {days} days had API traffic; a trend needs 3 or more"])
    checkpoint("fitting the trend", 0.8)
    fit = fit_line([d["day_start"] / DAY for d in series], [d["p95_ms"] for d in series])
    figures.update({"slope_ms_per_day": fit.slope, "slope_low": fit.slope_low, "slope_high": fit.slope_high,
                    "confidence": fit.confidence, "first_p95_ms": series[0]["p95_ms"],
                    "last_p95_ms": series[-1]["p95_ms"]})
    findings = []
    if fit.rising:
        findings.append(Finding(
            f"p95 latency is rising by {fit.slope:.1f} ms a day ({fit.confidence:.0%} interval {fit.slope_low:.1f} to "
            f"{fit.slope_high:.1f}) over {len(series)} days, from {series[0]['p95_ms']:.0f} to "
            f"{series[-1]['p95_ms']:.0f} ms", "medium", follow_up="adaptive", follow_up_procedure="capacity_planning"))
    return ProcedureResult(figures, findings)
