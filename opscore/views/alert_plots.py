"""The alert timeline: each alert a row of its states over time, production changes on the same axis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from opscore.models.registry import ProductionChange
from opscore.views.plots import TIME_AXIS, _add_markers, _layout, empty_figure

STATE_COLOURS = {"pending": "#E69F00", "firing": "#D55E00", "nodata": "#999999", "acknowledged": "#0072B2"}
_EVENT_SYMBOLS = {"acknowledged": "circle", "silenced": "x", "delivered": "triangle-up",
                  "delivery_failed": "triangle-down", "escalated": "star", "task_opened": "square",
                  "retrained": "diamond"}
TITLE = "Alert states (one row per alert; production changes as dashed lines)"


def _t(at: float) -> pd.Timestamp:
    return pd.to_datetime(at, unit="s", utc=True)


def state_segments(alert: dict[str, Any], start: float, end: float) -> list[tuple[str, float, float]]:
    """The alert's states as (state, from, to) within [start, end): pending until it fired, then firing
    (acknowledged from its acknowledgement) until it resolved or now."""
    stop = alert["resolved_at"] if alert["resolved_at"] is not None else end
    fired = alert["fired_at"] if alert["fired_at"] is not None else stop
    acked = alert["acknowledged_at"] if alert["acknowledged_at"] is not None else stop
    pieces = [("pending", alert["started_at"], fired), ("firing", fired, max(fired, min(acked, stop))),
              ("acknowledged", max(fired, min(acked, stop)), stop)]
    if alert["state"] == "nodata":
        pieces.append(("nodata", stop, stop))
    return [(state, max(a, start), min(b, end)) for state, a, b in pieces if min(b, end) > max(a, start)]


def alert_timeline(alerts: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]],
                   markers: Sequence[ProductionChange], start: float, end: float) -> go.Figure:
    """States as thick lines per alert, events (deliveries, acks, silences, escalations) as markers."""
    shown = [a for a in alerts if state_segments(a, start, end)]
    if not shown:
        return empty_figure(TITLE, "No alert was pending or firing in this window.", TIME_AXIS, "alert")
    rows = {a["id"]: f"#{a['id']} {a['rule']} ({a['severity']})" for a in shown}
    fig = go.Figure()
    legend: set[str] = set()
    for alert in shown:
        for state, a, b in state_segments(alert, start, end):
            fig.add_trace(go.Scatter(x=[_t(a), _t(b)], y=[rows[alert["id"]]] * 2, mode="lines", name=state,
                                     line={"color": STATE_COLOURS[state], "width": 12}, legendgroup=state,
                                     showlegend=state not in legend, hovertemplate=f"{state}<extra></extra>"))
            legend.add(state)
    for kind, symbol in _EVENT_SYMBOLS.items():
        chosen = [e for e in events if e["kind"] == kind and e["alert_id"] in rows]
        if chosen:
            fig.add_trace(go.Scatter(x=[_t(e["at"]) for e in chosen], y=[rows[e["alert_id"]] for e in chosen],
                                     mode="markers", name=kind.replace("_", " "), text=[e["detail"] for e in chosen],
                                     marker={"symbol": symbol, "size": 10, "color": "#000"},
                                     hovertemplate="%{text}<extra></extra>"))
    _add_markers(fig, markers, _t(start), _t(end))
    fig.update_xaxes(range=[_t(start), _t(end)])
    return _layout(fig, TITLE, TIME_AXIS, "alert", height=max(300, 120 + 28 * len(rows)))


def rule_values(readings: Sequence[dict[str, Any]]) -> go.Figure:
    """Each rule's current value as a share of its threshold (1.0 is the threshold)."""
    measured = [r for r in readings if r["value"] is not None and r["threshold"]]
    title = "Rules now (current value ÷ threshold; above 1 the condition holds)"
    if not measured:
        return empty_figure(title, "No rule has anything to measure yet.", "value ÷ threshold", "rule")
    labels = [f"{r['rule']} ({r['severity']}) " + ",".join(f"{k}={v}" for k, v in r["labels"].items())
              for r in measured]
    ratios = [r["value"] / r["threshold"] for r in measured]
    fig = go.Figure(go.Bar(x=ratios, y=labels, orientation="h",
                           marker={"color": ["#D55E00" if r["breached"] else "#009E73" for r in measured]},
                           text=[f"{r['value']:.4g} vs {r['threshold']:g}" for r in measured],
                           hovertemplate="%{y}: %{text}<extra></extra>"))
    fig.add_vline(x=1, line={"color": "#555", "dash": "dash"})
    return _layout(fig, title, "value ÷ threshold", "rule", height=max(300, 100 + 24 * len(labels)))
