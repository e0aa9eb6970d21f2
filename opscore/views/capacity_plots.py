"""Figures for capacity planning: when requests come (hour by weekday) and where their growth leads.

The heatmap counts mean requests per hour so a busy Monday morning stands out against the week; the
projection draws the measured days, the fitted line ahead and its prediction band, because one
future day falls anywhere in that band, not on the line.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from opscore.operations.capacity import CapacityPlan
from opscore.views.plots import PALETTE, _layout, empty_figure

REQUESTS_PER_DAY = "requests per day (API)"


def pattern_heatmap(plan: CapacityPlan) -> go.Figure:
    """Mean API requests per hour, weekdays (rows) by hour of day (columns, UTC)."""
    title = f"Request pattern over the last {plan.window_days} days (mean requests per hour, UTC)"
    if plan.daily.empty:
        return empty_figure(title, "no API traffic in this window", "hour of day (UTC)", "weekday")
    fig = go.Figure(go.Heatmap(
        z=plan.pattern.to_numpy(), x=list(plan.pattern.columns), y=list(plan.pattern.index),
        colorscale="Blues", colorbar={"title": {"text": "requests / hour"}},
        hovertemplate="%{y} %{x}:00 UTC<br>%{z:.1f} requests per hour<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(dtick=2)
    return _layout(fig, title, "hour of day (UTC)", "weekday")


def projection_chart(plan: CapacityPlan) -> go.Figure:
    """Measured requests per day, the fitted projection and its prediction band."""
    title = (f"Requests per day, projected {plan.horizon_days} days ahead "
             "(band: where one future day should fall, 95 % prediction interval)")
    if plan.projection.empty:
        reason = next((n for n in plan.notes if "projection" in n or "traffic" in n), "no projection")
        return empty_figure(title, reason, "day (UTC)", REQUESTS_PER_DAY)
    ahead = plan.projection
    days = pd.to_datetime(ahead["day_start"], unit="s", utc=True)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=days, y=ahead["high"], mode="lines", line={"width": 0}, showlegend=False,
                             hoverinfo="skip", name="upper"))
    fig.add_trace(go.Scatter(x=days, y=ahead["low"], mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(0, 114, 178, 0.18)", name="95 % prediction band"))
    fig.add_trace(go.Scatter(x=days, y=ahead["requests"], mode="lines", line={"color": PALETTE[0], "dash": "dash"},
                             name="projection"))
    measured = plan.daily
    fig.add_trace(go.Scatter(x=pd.to_datetime(measured["day_start"], unit="s", utc=True), y=measured["requests"],
                             mode="markers+lines", marker={"color": PALETTE[1]}, line={"color": PALETTE[1]},
                             name="measured"))
    return _layout(fig, title, "day (UTC)", REQUESTS_PER_DAY)
