"""Figures for model performance in production: measured on labels, and estimated without them.

Each point is a window; its interval is drawn with it, because a window with twelve labels and one
with twelve thousand must not look equally sure. The holdout's figure and the alert line sit beside
the points so a drop reads at a glance.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from opscore.monitoring.accuracy import AccuracyResult
from opscore.monitoring.performance_estimation import PerformanceEstimate
from opscore.views.plots import PALETTE, TIME_AXIS, _layout, empty_figure

Y_TITLES = {"accuracy": "accuracy (share of labels predicted right)", "mae": "mean absolute error (target units)"}
BASELINE, ALERT = "#555", "#D55E00"


def _middles(table: pd.DataFrame) -> pd.Series:
    return table["start"] + (table["end"] - table["start"]) / 2


def _reference_lines(fig: go.Figure, baseline: float | None, alert: float | None) -> None:
    if baseline is not None:
        fig.add_hline(y=baseline, line={"color": BASELINE, "dash": "dash", "width": 1},
                      annotation_text=f"holdout {baseline:.3f}", annotation_position="top left")
    if alert is not None:
        fig.add_hline(y=alert, line={"color": ALERT, "dash": "dot", "width": 1.5},
                      annotation_text=f"alert line {alert:.3f}", annotation_position="bottom left")


def accuracy_figure(result: AccuracyResult) -> go.Figure:
    """The primary metric per window with its interval, against the holdout and the alert line."""
    metric = result.metric
    title = f"{'Accuracy' if metric == 'accuracy' else 'MAE'} on labelled traffic"
    if result.version_id:
        title += f" ({result.version_id})"
    y_title = Y_TITLES[metric]
    table = result.to_df()
    shown = table[table["labelled"] > 0] if not table.empty else table
    if shown.empty:
        return empty_figure(title, "No labelled predictions in this period: labels arrive through POST /feedback",
                            TIME_AXIS, y_title)
    fig = go.Figure(go.Scatter(
        x=_middles(shown), y=shown[metric], mode="lines+markers", name=f"{metric} ({result.confidence:.0%} CI)",
        line={"color": PALETTE[0]},
        error_y={"type": "data", "symmetric": False, "array": shown[f"{metric}_high"] - shown[metric],
                 "arrayminus": shown[metric] - shown[f"{metric}_low"]},
        customdata=shown[["labelled", "labelled_share"]].to_numpy(),
        hovertemplate="%{y:.3f} on %{customdata[0]} labels (%{customdata[1]:.0%} of predictions)<extra></extra>",
    ))
    _reference_lines(fig, result.baseline.get(metric), result.alert_line)
    return _layout(fig, title, TIME_AXIS, y_title)


def estimated_accuracy_figure(result: PerformanceEstimate) -> go.Figure:
    """Estimated accuracy per chunk with its band, realized accuracy where labels exist."""
    title = "Estimated accuracy without labels (CBPE)"
    if result.version_id:
        title += f" ({result.version_id})"
    y_title = Y_TITLES["accuracy"]
    table = result.to_df()
    shown = table[table["predictions"] > 0] if not table.empty else table
    if result.unavailable or shown.empty:
        return empty_figure(title, result.unavailable or "No predictions in this period", TIME_AXIS, y_title)
    x = _middles(shown)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=shown["estimate_high"], mode="lines", line={"width": 0}, showlegend=False,
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=shown["estimate_low"], mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(0, 114, 178, 0.18)", name=f"±{result.sigmas:g}σ sampling band",
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=shown["estimated_accuracy"], mode="lines+markers", name="estimated",
                             line={"color": PALETTE[0]}, customdata=shown[["predictions"]].to_numpy(),
                             hovertemplate="estimated %{y:.3f} from %{customdata[0]} predictions<extra></extra>"))
    labelled = shown[shown["labelled"] > 0]
    if not labelled.empty:
        fig.add_trace(go.Scatter(
            x=_middles(labelled), y=labelled["realized_accuracy"], mode="markers", name="realized (95% CI)",
            marker={"color": PALETTE[1], "symbol": "diamond", "size": 8},
            error_y={"type": "data", "symmetric": False,
                     "array": labelled["realized_high"] - labelled["realized_accuracy"],
                     "arrayminus": labelled["realized_accuracy"] - labelled["realized_low"]},
            customdata=labelled[["labelled"]].to_numpy(),
            hovertemplate="realized %{y:.3f} on %{customdata[0]} labels<extra></extra>",
        ))
    _reference_lines(fig, result.baseline, result.alert_line)
    return _layout(fig, title, TIME_AXIS, y_title)
