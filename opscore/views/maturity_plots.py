"""The maturity scorecard as one figure: each area's level on the same four-step scale.

Bars rather than a radar: six areas read left to right against named levels, and the gap to
``expert`` is the length still to go. Hovering a bar shows the next step, the line worth acting on.
"""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.graph_objects as go

from opscore.operations.maturity import LEVELS
from opscore.views.plots import _layout, empty_figure

TITLE = "Operational maturity per area (basic → expert, from what this workspace really does)"
# One colour per level, light to dark: the darker the bar, the further the area has come.
LEVEL_COLOURS = {"basic": "#C6DBEF", "standard": "#6BAED6", "advanced": "#2171B5", "expert": "#08306B"}


def _hover(text: str) -> str:
    return "<br>".join(textwrap.wrap(text, 60))


def maturity_chart(scorecard: pd.DataFrame) -> go.Figure:
    """Level per area (``MaturityScorecard.to_df()``): a horizontal bar each, its next step on hover."""
    if scorecard.empty:
        return empty_figure(TITLE, "no area scored", "level", "area")
    fig = go.Figure(go.Bar(
        x=scorecard["score"], y=scorecard["area"], orientation="h",
        marker={"color": [LEVEL_COLOURS[level] for level in scorecard["level"]]},
        text=scorecard["level"], textposition="inside", insidetextanchor="start",
        customdata=[[_hover(step), _hover(evidence)] for step, evidence in
                    zip(scorecard["next_step"], scorecard["evidence"], strict=True)],
        hovertemplate="<b>%{y}</b>: %{text}<br>evidence: %{customdata[1]}<br>next: %{customdata[0]}<extra></extra>",
    ))
    fig.update_xaxes(range=[0, len(LEVELS)], tickvals=list(range(1, len(LEVELS) + 1)), ticktext=list(LEVELS),
                     showgrid=True)
    fig.update_yaxes(autorange="reversed")
    fig = _layout(fig, TITLE, "level", "area", height=340)
    fig.update_layout(hovermode="closest", showlegend=False, margin={"l": 130, "r": 20, "t": 64, "b": 60})
    return fig
