"""The capacity figures draw the plan's own numbers: the heatmap its pattern, the projection its band."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opscore.operations.capacity import WEEKDAYS, CapacityPlan
from opscore.views.capacity_plots import pattern_heatmap, projection_chart


def _plan() -> CapacityPlan:
    pattern = pd.DataFrame(np.arange(7 * 24, dtype=float).reshape(7, 24), index=list(WEEKDAYS), columns=range(24))
    daily = pd.DataFrame({"day_start": [0.0, 86_400.0, 172_800.0], "requests": [10, 12, 14]})
    projection = pd.DataFrame({"day_start": [259_200.0, 345_600.0], "requests": [16.0, 18.0],
                               "low": [12.0, 13.0], "high": [20.0, 23.0]})
    return CapacityPlan(3, 2, 200.0, pattern, daily, 1.0, 2.0, 0.0, projection=projection)


def test_heatmap_shows_the_pattern_by_weekday_and_hour():
    fig = pattern_heatmap(_plan())
    assert list(fig.data[0].y) == list(WEEKDAYS) and list(fig.data[0].x) == list(range(24))
    assert np.asarray(fig.data[0].z)[1][3] == 27.0
    assert "hour of day (UTC)" in fig.layout.xaxis.title.text


def test_projection_draws_band_line_and_measured_days():
    fig = projection_chart(_plan())
    upper, lower, line, measured = fig.data
    assert list(upper.y) == [20.0, 23.0] and list(lower.y) == [12.0, 13.0] and lower.fill == "tonexty"
    assert list(line.y) == [16.0, 18.0] and list(measured.y) == [10, 12, 14]


def test_empty_plans_say_why():
    plan = _plan()
    plan.projection = pd.DataFrame()
    plan.notes.append("2 whole day(s) of traffic: a growth projection needs 3 or more")
    fig = projection_chart(plan)
    assert not fig.data and "growth projection needs 3" in fig.layout.annotations[0].text.replace("<br>", " ")


def test_titles_put_what_they_count_on_a_second_line():
    for fig in (pattern_heatmap(_plan()), projection_chart(_plan())):
        head, _, rest = fig.layout.title.text.partition("<br>")
        assert "\n" not in fig.layout.title.text and rest.startswith("<sup>(") and len(head) < 60
