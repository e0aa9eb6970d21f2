"""Plotly figures for the dashboard, built from plain frames so they are tested without Streamlit.

Every figure has a title, axis titles with units, and an empty state that says what is missing
instead of an empty grid. Times are shown in UTC, latencies in milliseconds.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from opscore.models.registry import ProductionChange

# Colour-blind-safe (Okabe-Ito); a version keeps its colour on every chart of one page.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
PERCENTILE_DASH = {"p50_ms": "dot", "p95_ms": "solid", "p99_ms": "dash"}
TIME_AXIS = "time (UTC)"


def version_colours(version_ids: Sequence[str]) -> dict[str, str]:
    """A stable colour per version: sorted ids take the palette in order."""
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(sorted(set(version_ids)))}


def _times(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True)
    return pd.to_datetime(values, utc=True)


def _title_lines(title: str) -> str:
    """What a chart counts, in parentheses, goes on a smaller second line, so a half-width chart shows it whole."""
    head, sep, rest = title.partition(" (")
    return f"{head}<br><sup>({rest}</sup>" if sep else title


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        title={"text": _title_lines(title), "x": 0, "xanchor": "left", "font": {"size": 16}},
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=height,
        margin={"l": 60, "r": 20, "t": 64, "b": 96},
        # Under the axis title: a legend at the top would crowd the title and the production markers.
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0.01, "xanchor": "left", "x": 0},
        hovermode="x unified",
    )
    return fig


def empty_figure(title: str, message: str, x_title: str, y_title: str, height: int = 340) -> go.Figure:
    """A titled figure whose only content is the reason it is empty."""
    fig = go.Figure()
    fig.add_annotation(
        text="<br>".join(textwrap.wrap(message, 48)), xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
        font={"size": 14, "color": "#555"},
    )
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    return _layout(fig, title, x_title, y_title, height)


def is_empty(fig: go.Figure) -> bool:
    """True for a figure made by :func:`empty_figure` (it has no traces)."""
    return len(fig.data) == 0


def _add_markers(fig: go.Figure, markers: Sequence[ProductionChange], start: pd.Timestamp, end: pd.Timestamp) -> None:
    for marker in markers:
        at = pd.to_datetime(marker.at, unit="s", utc=True)
        if not start <= at <= end:
            continue
        fig.add_vline(x=at, line={"color": "#888", "width": 1, "dash": "dash"})
        fig.add_annotation(
            x=at, y=1, yref="paper", yanchor="bottom", showarrow=False, font={"size": 11, "color": "#555"},
            text=f"rollback to {marker.version_id}" if marker.action == "rollback" else f"{marker.version_id} to production",
        )


def _series_bounds(series: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    times = _times(series["bucket_start"])
    return times.min(), times.max()


def latency_percentiles(
    series: pd.DataFrame, markers: Sequence[ProductionChange] = (), *, empty_message: str = "No requests in this window",
    percentiles: Sequence[str] = tuple(PERCENTILE_DASH), title: str = "Request latency per version",
) -> go.Figure:
    """p50 (dotted), p95 (solid) and p99 (dashed) per version over time, in milliseconds.

    ``percentiles`` picks some of the columns (``("p95_ms",)`` for a glance); the title names them.
    """
    shown = {column: dash for column, dash in PERCENTILE_DASH.items() if column in percentiles}
    names = " / ".join(c.removesuffix("_ms") for c in shown)
    title = f"{names} {title[0].lower()}{title[1:]}"
    y_title = "latency (ms)"
    if series.empty or series["count"].sum() == 0:
        return empty_figure(title, empty_message, TIME_AXIS, y_title)
    fig = go.Figure()
    colours = version_colours(series["version_id"].astype(str))
    for version_id, rows in series.sort_values("bucket_start").groupby("version_id", sort=True):
        rows = rows[rows["count"] > 0]
        for column, dash in shown.items():
            fig.add_trace(
                go.Scatter(
                    x=_times(rows["bucket_start"]),
                    y=rows[column],
                    mode="lines",
                    name=f"{version_id} {column.removesuffix('_ms')}",
                    line={"color": colours[str(version_id)], "dash": dash, "width": 2 if column == "p95_ms" else 1.5},
                    hovertemplate="%{y:.1f} ms",
                )
            )
    _add_markers(fig, markers, *_series_bounds(series))
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, TIME_AXIS, y_title)


def throughput(
    series: pd.DataFrame, markers: Sequence[ProductionChange] = (), *, empty_message: str = "No requests in this window",
    height: int = 300, title: str = "Requests per second", column: str = "rps",
    y_title: str = "requests per second",
) -> go.Figure:
    """Requests (``column="rps"``) or rows (``"rows_per_s"``) per second per version over time, stacked
    (the stack is the total)."""
    unit = "req/s" if column == "rps" else "rows/s"
    if series.empty or series["count"].sum() == 0:
        return empty_figure(title, empty_message, TIME_AXIS, y_title, height)
    fig = go.Figure()
    colours = version_colours(series["version_id"].astype(str))
    for version_id, rows in series.sort_values("bucket_start").groupby("version_id", sort=True):
        fig.add_trace(
            go.Scatter(
                x=_times(rows["bucket_start"]), y=rows[column], mode="lines", name=str(version_id),
                stackgroup="versions", line={"color": colours[str(version_id)], "width": 1},
                hovertemplate=f"%{{y:.2f}} {unit}",
            )
        )
    _add_markers(fig, markers, *_series_bounds(series))
    return _layout(fig, title, TIME_AXIS, y_title, height)


def error_rate(
    series: pd.DataFrame, markers: Sequence[ProductionChange] = (), *, empty_message: str = "No requests in this window",
    title: str = "Failed requests", y_title: str = "failed requests (%)",
) -> go.Figure:
    """Share of requests that failed (the model call failed), per version over time, in percent."""
    if series.empty or series["count"].sum() == 0:
        return empty_figure(title, empty_message, TIME_AXIS, y_title, 300)
    fig = go.Figure()
    colours = version_colours(series["version_id"].astype(str))
    for version_id, rows in series.sort_values("bucket_start").groupby("version_id", sort=True):
        rows = rows[rows["count"] > 0]
        fig.add_trace(
            go.Scatter(
                x=_times(rows["bucket_start"]), y=rows["error_rate"] * 100, mode="lines", name=str(version_id),
                line={"color": colours[str(version_id)]}, hovertemplate="%{y:.2f} %",
            )
        )
    _add_markers(fig, markers, *_series_bounds(series))
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, TIME_AXIS, y_title, 300)


REFUSAL_COLOURS = ("#D55E00", "#CC79A7", "#E69F00", "#56B4E9")


def refusals(
    series: pd.DataFrame, labels: dict[str, str], markers: Sequence[ProductionChange] = (), *,
    empty_message: str = "No request was refused in this window",
    title: str = "Refused requests by reason (API: answered 4xx, nothing predicted)", step_seconds: int = 60,
) -> go.Figure:
    """Refused requests per step, stacked by reason (``series``: bucket_start, reason, count)."""
    y_title = f"refused requests per {step_seconds // 60} min" if step_seconds > 60 else "refused requests per minute"
    if series.empty or series["count"].sum() == 0:
        return empty_figure(title, empty_message, TIME_AXIS, y_title, 300)
    fig = go.Figure()
    for i, (reason, rows) in enumerate(series.sort_values("bucket_start").groupby("reason", sort=True)):
        fig.add_trace(
            go.Bar(x=_times(rows["bucket_start"]), y=rows["count"], name=labels.get(str(reason), str(reason)),
                   marker_color=REFUSAL_COLOURS[i % len(REFUSAL_COLOURS)], hovertemplate="%{y:,} refused")
        )
    fig.update_layout(barmode="stack")
    _add_markers(fig, markers, *_series_bounds(series))
    return _layout(fig, title, TIME_AXIS, y_title, 300)


def metric_comparison(metrics: pd.DataFrame, *, left: str, right: str) -> go.Figure:
    """Holdout metrics of two versions as grouped bars (``metrics`` has columns metric, left, right)."""
    title, y_title = f"Holdout metrics: {left} vs {right}", "score (unitless)"
    if metrics.empty:
        return empty_figure(title, "Neither version has holdout metrics", "metric", y_title, 300)
    fig = go.Figure()
    colours = version_colours([left, right])
    for name in (left, right):
        fig.add_trace(
            go.Bar(x=metrics["metric"], y=metrics[name], name=name, marker_color=colours[name],
                   text=[f"{v:.3f}" if pd.notna(v) else "" for v in metrics[name]], textposition="outside",
                   hovertemplate="%{x}: %{y:.4f}")
        )
    fig.update_layout(barmode="group", hovermode="closest")
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "metric", y_title, 320)
