"""What the Maintenance page shows beside the queue: capacity (pattern, projection, sizing) and the scorecard.

One call assembles both sections, so the page stays a description: two figures and a table for
capacity, a figure and a table for the maturity scorecard, each already in the operator's words.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from opscore.config import Settings
from opscore.operations.capacity import CapacityPlan, ServiceTime, plan_capacity
from opscore.operations.maturity import maturity_scorecard
from opscore.views.capacity_plots import pattern_heatmap, projection_chart
from opscore.views.formatting import when
from opscore.views.maturity_plots import maturity_chart


@dataclass(frozen=True)
class MaintenanceReports:
    plan: CapacityPlan
    heatmap: go.Figure
    projection: go.Figure
    capacity_table: pd.DataFrame
    scorecard: pd.DataFrame
    maturity: go.Figure
    notes: list[str]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f} requests/s"


def capacity_rows(plan: CapacityPlan) -> pd.DataFrame:
    """The plan's headline figures as (figure, value, where it comes from) rows."""
    service = plan.service
    rows = [
        ("mean load", _rate(plan.mean_rps), f"API requests over the last {plan.window_days} days"),
        ("busiest hour", _rate(plan.peak_rps), when(plan.peak_at, "%a %Y-%m-%d %H:00 UTC") if plan.peak_at else "-"),
        ("peak against mean", "-" if plan.peak_to_mean is None else f"{plan.peak_to_mean:.1f}×", "busiest hour / mean"),
        (f"projected busiest hour in {plan.horizon_days} days", _rate(plan.projected_peak_rps),
         "-" if plan.projected_peak_rps_high is None else f"up to {_rate(plan.projected_peak_rps_high)} (95 % band)"),
        ("service time per request", "-" if service is None else f"{service.seconds * 1000:.1f} ms",
         "-" if service is None else f"production {service.version_id} timed on this host, {service.rows} row(s) a call"),
        ("one replica at most", _rate(service.requests_per_second if service else None), "1 / service time"),
        ("utilisation at the busiest hour", "-" if plan.utilisation_at_peak is None else f"{plan.utilisation_at_peak:.1%}",
         "busiest hour × service time, one replica"),
        (f"replicas for p95 under {plan.p95_target_ms:.0f} ms", "-" if plan.replicas_needed is None else
         str(plan.replicas_needed), "-" if plan.replicas_needed_high is None else
         f"{plan.replicas_needed_high} at the top of the band (M/M/1 per replica)"),
        ("host load per core now", "-" if plan.host_load_per_core is None else f"{plan.host_load_per_core:.2f}",
         "1-minute load average of the host running this page"),
    ]
    return pd.DataFrame(rows, columns=["figure", "value", "from"])


def maintenance_reports(settings: Settings, *, now: float | None = None, window_days: int = 28,
                        horizon_days: int = 90, p95_target_ms: float = 200.0,
                        service: ServiceTime | None = None) -> MaintenanceReports:
    """The capacity plan with its figures and the maturity scorecard, ready to render."""
    plan = plan_capacity(settings, window_days=window_days, horizon_days=horizon_days, p95_target_ms=p95_target_ms,
                         now=now, service=service)
    scorecard = maturity_scorecard(settings, now=now).to_df()
    return MaintenanceReports(plan, pattern_heatmap(plan), projection_chart(plan), capacity_rows(plan), scorecard,
                              maturity_chart(scorecard), list(plan.notes))
