"""Figures for drift: one column's reference against current traffic, and drift per column over time.

Built from the live monitors' results (counts over the reference profile's bins, per-window reports),
so the Drift page is one call per chart and each figure is tested without Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from opscore.models.registry import ProductionChange
from opscore.monitoring.distributions import Counts
from opscore.monitoring.live_drift import LiveDriftReport
from opscore.views.plots import PALETTE, TIME_AXIS, _add_markers, _layout, empty_figure
from opscore.views.plots import _times as times


def column_distribution_figure(column: str, counts: Counts) -> go.Figure:
    """Share of each side's rows per bin: a histogram over the bins for numeric, bars per category."""
    title = f"{column}: reference against current traffic (share of rows per bin)"
    x_title = "category" if counts.labels is not None else f"{column} (bin middle, column units)"
    if not counts.n_reference or not counts.n_current:
        return empty_figure(title, f"No {'reference' if not counts.n_reference else 'current'} values of {column} "
                                   "in this window", x_title, "share of rows")
    reference, current = counts.shares()
    if counts.labels is not None:
        x: Sequence = list(counts.labels)
    else:
        # Bin middles on a numeric axis (readable ticks however many bins the profile keeps).
        edges = np.asarray(counts.edges, dtype=float)
        finite = np.where(np.isfinite(edges), edges, np.nan)
        x = list((finite[:-1] + finite[1:]) / 2)
    fig = go.Figure([
        go.Bar(x=x, y=reference, name=f"reference ({counts.n_reference:,} rows)", marker={"color": PALETTE[0]}),
        go.Bar(x=x, y=current, name=f"current ({counts.n_current:,} rows)", marker={"color": PALETTE[1]}),
    ])
    fig.update_layout(barmode="group", bargap=0.15 if counts.labels is not None else 0.02)
    fig.update_yaxes(tickformat=".1%")
    return _layout(fig, title, x_title, "share of rows")


def drift_heatmap(reports: Sequence[LiveDriftReport], markers: Sequence[ProductionChange] = ()) -> go.Figure:
    """Each column's statistic over its threshold per window (≥ 1 drifted for distance tests), with production moves.

    p-value tests (KS, chi-square, Z) are drawn as threshold over p-value, so ≥ 1 is drifted for them too.
    Windows with too few rows (``drift_min_rows``) get no score: a grey column that says so.
    """
    title = "Drift score per column and window (statistic over threshold; 1 or more is drifted; grey: too few rows)"
    shown = [r for r in reports if r.rows]
    if not shown:
        return empty_figure(title, "No traffic logged in these windows", TIME_AXIS, "column")
    columns = list(shown[0].report.columns)
    z = np.full((len(columns), len(shown)), np.nan)
    small = np.full((len(columns), len(shown)), np.nan)
    for j, report in enumerate(shown):
        if report.too_few_rows:
            small[:, j] = 1.0
            continue
        for i, name in enumerate(columns):
            column = report.report.columns.get(name)
            if column is None:
                continue
            if column.p_value is not None:
                z[i, j] = column.threshold / max(column.p_value, 1e-300)
            elif column.threshold:
                z[i, j] = column.statistic / column.threshold
    x = times(np.array([r.start for r in shown], dtype=float))
    fig = go.Figure(go.Heatmap(
        x=x, y=columns, z=np.minimum(z, 10.0), zmin=0, zmax=2, colorscale=[[0, "#f7f7f7"], [0.5, "#fdd49e"],
                                                                         [1, "#d7301f"]],
        colorbar={"title": "score"}, hovertemplate="%{y} at %{x}: %{z:.2f}<extra></extra>", name="drift score",
    ))
    if not np.isnan(small).all():
        rows = np.array([[r.rows for r in shown]] * len(columns))
        fig.add_trace(go.Heatmap(
            x=x, y=columns, z=small, zmin=0, zmax=1, colorscale=[[0, "#d9d9d9"], [1, "#d9d9d9"]], showscale=False,
            customdata=rows, name="too few rows",
            hovertemplate="%{y} at %{x}: too few rows (%{customdata}) for a verdict<extra></extra>",
        ))
    _add_markers(fig, markers, x.min(), x.max())
    return _layout(fig, title, TIME_AXIS, "column", height=max(380, 28 * len(columns) + 160))


def multivariate_figure(frame: pd.DataFrame, markers: Sequence[ProductionChange] = ()) -> go.Figure:
    """Mean PCA reconstruction error per window inside its alert band (reference mean ± 3σ)."""
    title = "Multivariate drift (mean PCA reconstruction error per window, band: reference ± 3σ)"
    y_title = "reconstruction error (standardised units)"
    shown = frame[frame["rows"] > 0] if not frame.empty else frame
    if shown.empty or shown["mean_error"].isna().all():
        return empty_figure(title, "No multivariate reference for this version, or no traffic in these windows",
                            TIME_AXIS, y_title)
    x = times(shown["start"])
    fig = go.Figure([
        go.Scatter(x=x, y=shown["upper"], mode="lines", line={"width": 0, "shape": "hv"}, showlegend=False,
                   hoverinfo="skip"),
        go.Scatter(x=x, y=shown["lower"], mode="lines", line={"width": 0, "shape": "hv"}, fill="tonexty",
                   fillcolor="rgba(0, 114, 178, 0.15)", name="alert band"),
        go.Scatter(x=x, y=shown["mean_error"], mode="lines+markers", name="mean error", line={"color": PALETTE[0]},
                   marker={"color": [PALETTE[5] if a else PALETTE[0] for a in shown["alert"]]}),
    ])
    _add_markers(fig, markers, x.min(), x.max())
    return _layout(fig, title, TIME_AXIS, y_title)


def quality_figure(frame: pd.DataFrame, share: str = "missing_share") -> go.Figure:
    """One line per column: the share of rows per window that was missing (or out of range, or an outlier)."""
    what = {"missing_share": "missing", "out_of_range_share": "outside the training range",
            "outlier_share": "outliers (IQR rule)"}[share]
    title = f"Data quality: share of rows {what} per window (per column)"
    shown = frame[frame["rows"] > 0] if not frame.empty else frame
    if shown.empty:
        return empty_figure(title, "No traffic logged in these windows", TIME_AXIS, "share of rows")
    fig = go.Figure([go.Scatter(x=times(part["start"]), y=part[share], mode="lines+markers", name=str(name),
                                line={"color": PALETTE[i % len(PALETTE)]})
                     for i, (name, part) in enumerate(shown.groupby("column", sort=False))])
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, title, TIME_AXIS, "share of rows")
