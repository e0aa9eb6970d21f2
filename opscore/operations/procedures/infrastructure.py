"""Infrastructure and cost: disk used and its growth each week, and what serving costs each month.

Cost is what the workspace can measure: model time (the request latencies the rollups sum, per
version), rows and requests served, and bytes stored. Money appears only when the operator gives
``host_cost_per_hour`` in the task's parameters; opscore has no bill to read.
"""

from __future__ import annotations

import time
from typing import Any

from opscore.config import Settings
from opscore.models import registry
from opscore.models.artifacts import DATASETS
from opscore.operations import disk_usage
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure
from opscore.serving.telemetry_queries import window_percentiles_by_version
from opscore.store import open_store

DAY = 86_400.0


@procedure("infrastructure_review", title="Infrastructure review: disk used by the model store and the database",
           maintenance_set="weekly", estimated_seconds=10)
def infrastructure_review(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    now = float(params.get("now", time.time()))
    checkpoint("measuring disk use", 0.0)
    usage = disk_usage.measure(settings, now)
    before = disk_usage.previous(settings, now)
    free, total = disk_usage.free_bytes(settings)
    disk_usage.record(settings, usage)
    figures: dict[str, Any] = {"model_store_bytes": usage.model_store_bytes, "database_bytes": usage.database_bytes,
                               "free_bytes": free, "filesystem_bytes": total}
    findings = []
    if before is not None and usage.measured_at > before.measured_at:
        days = (usage.measured_at - before.measured_at) / DAY
        growth = usage.total_bytes - before.total_bytes
        figures.update({"previous_measured_at": before.measured_at, "growth_bytes": growth,
                        "growth_bytes_per_day": growth / days,
                        "model_store_growth_bytes": usage.model_store_bytes - before.model_store_bytes,
                        "database_growth_bytes": usage.database_bytes - before.database_bytes})
        if growth > 0:
            days_left = free / (growth / days)
            figures["days_until_full"] = days_left
            if days_left < 30:
                findings.append(Finding(f"at {growth / days / 1e6:.1f} MB a day the disk is full in {days_left:.0f} days",
                                        "high", follow_up="adaptive", follow_up_procedure="cleanup"))
    if total and free / total < 0.1:
        findings.append(Finding(f"only {free / total:.0%} of the disk holding the model store is free "
                                f"({free / 1e9:.1f} GB)", "high", follow_up="corrective"))
    recommendations = [] if before else ["first measurement: next week's review reports the growth against it"]
    return ProcedureResult(figures, findings, recommendations)


@procedure("cost_analysis", title="Cost analysis: model time, traffic and storage per version",
           maintenance_set="monthly", estimated_seconds=10)
def cost_analysis(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    now = float(params.get("now", time.time()))
    days = float(params.get("days", 30))
    store = open_store(settings)
    checkpoint("model time per version", 0.0)
    total, by_version = window_percentiles_by_version(store, now - days * DAY, now)
    production = registry.alias_target(store, "production")
    model_seconds = {v: (f["mean_ms"] or 0.0) * f["count"] / 1000 for v, f in by_version.items()}
    all_seconds = sum(model_seconds.values())
    versions = {v: {"requests": f["count"], "rows": f["rows"], "model_seconds": model_seconds[v],
                    "ms_per_row": (f["mean_ms"] or 0.0) * f["count"] / f["rows"] if f["rows"] else None,
                    "share_of_model_time": model_seconds[v] / all_seconds if all_seconds else 0.0}
                for v, f in by_version.items()}
    checkpoint("storage", 0.6)
    root = settings.model_store_path
    figures: dict[str, Any] = {
        "window_days": days, "requests": total["count"], "rows": total["rows"], "model_seconds": all_seconds,
        "versions": versions, "datasets_bytes": disk_usage.folder_bytes(root / DATASETS),
        "model_store_bytes": disk_usage.folder_bytes(root), "database_bytes": disk_usage.database_bytes(settings)}
    findings, recommendations = [], []
    price = params.get("host_cost_per_hour")
    if price is not None and total["count"]:
        figures["cost"] = float(price) * days * 24
        figures["cost_per_1000_requests"] = figures["cost"] / total["count"] * 1000
    elif price is None:
        recommendations.append("give host_cost_per_hour in the task's parameters to see money beside model time")
    for version, entry in versions.items():
        if version != production and entry["share_of_model_time"] > 0.25:
            findings.append(Finding(
                f"{version} is not production yet takes {entry['share_of_model_time']:.0%} of model time over "
                f"{days:g} days (shadow or A/B traffic): end the rollout or the experiment when it has answered",
                "medium", follow_up="adaptive"))
    if settings.batching is False and total["count"] and total["rows"] / total["count"] < 2:
        recommendations.append("micro-batching is off and requests carry one row each: turning batching on "
                               "scores concurrent requests in one model call")
    return ProcedureResult(figures, findings, recommendations)
