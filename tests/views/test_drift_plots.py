"""Drift figures from the live monitors on logged traffic: shares per bin and the per-window heatmap."""

import time

import numpy as np
import pytest

from opscore.monitoring.distributions import Counts
from opscore.monitoring.live_drift import column_distribution, drift_over_time
from opscore.serving.feature_rollups import bucket_of
from opscore.views.drift_plots import column_distribution_figure, drift_heatmap
from opscore.views.plots import is_empty


def test_distribution_shows_each_sides_share_per_bin(served):
    now = time.time() + 60
    counts = column_distribution(served, "v1", "age", bucket_of(now - 86400), now)
    fig = column_distribution_figure("age", counts)
    reference, current = fig.data
    assert sum(current.y) == pytest.approx(1.0) and sum(reference.y) == pytest.approx(1.0)
    assert np.allclose(np.array(current.y) * counts.n_current, counts.current)
    assert "120 rows" in current.name
    assert "share of rows" in fig.layout.yaxis.title.text


def test_categorical_bars_are_named_by_category():
    counts = Counts(np.array([30, 70]), np.array([50, 50]), labels=("own", "rent"))
    fig = column_distribution_figure("home", counts)
    assert list(fig.data[0].x) == ["own", "rent"] and list(fig.data[1].y) == [0.5, 0.5]
    assert is_empty(column_distribution_figure("home", Counts(np.array([1, 1]), np.array([0, 0]), labels=("a", "b"))))


def test_heatmap_has_a_cell_per_column_and_window_with_traffic(served):
    from opscore.config import replace

    now = time.time() + 60
    enough = replace(served, drift_min_rows=100)  # the fixture's 120 rows are enough for a verdict here
    reports = drift_over_time(enough, bucket_of(now - 3 * 3600), now, 3600, version="v1")
    fig = drift_heatmap(reports)
    heat = fig.data[0]
    with_traffic = [r for r in reports if r.rows]
    assert len(heat.x) == len(with_traffic) and list(heat.y) == list(with_traffic[0].report.columns)
    for i, name in enumerate(heat.y):
        column = with_traffic[-1].report.columns[name]
        expected = column.threshold / column.p_value if column.p_value is not None else column.statistic / column.threshold
        assert heat.z[i][-1] == pytest.approx(min(expected, 10.0))
    assert is_empty(drift_heatmap([r for r in reports if not r.rows]))


def test_multivariate_figure_draws_the_error_inside_its_band():
    import pandas as pd

    from opscore.views.drift_plots import multivariate_figure

    frame = pd.DataFrame({"start": [0.0, 3600.0, 7200.0], "end": [3600.0, 7200.0, 10800.0], "rows": [50, 0, 40],
                          "mean_error": [1.0, None, 3.0], "lower": [0.8, None, 0.7], "upper": [1.2, None, 1.3],
                          "alert": [False, False, True]})
    fig = multivariate_figure(frame.astype({"mean_error": float, "lower": float, "upper": float}))
    upper, lower, error = fig.data
    assert list(error.y) == [1.0, 3.0] and list(upper.y) == [1.2, 1.3] and list(lower.y) == [0.8, 0.7]
    assert error.marker.color[1] != error.marker.color[0]  # the alert window stands out
    assert is_empty(multivariate_figure(frame.iloc[1:2]))


def test_quality_figure_has_a_line_per_column(served):
    from opscore.monitoring.data_quality import quality_over_time
    from opscore.views.drift_plots import quality_figure

    now = time.time() + 60
    frame = quality_over_time(served, bucket_of(now - 3 * 3600), now, 3600, version="v1")
    fig = quality_figure(frame)
    assert {trace.name for trace in fig.data} == set(frame["column"])
    income = next(t for t in fig.data if t.name == "annual_income")
    assert list(income.y) == list(frame[(frame["column"] == "annual_income") & (frame["rows"] > 0)]["missing_share"])


def test_windows_with_too_few_rows_are_grey_in_the_heatmap_not_a_score(served):
    now = time.time() + 60
    reports = drift_over_time(served, bucket_of(now - 3 * 3600), now, 3600, version="v1")  # 120 rows < 300
    busy = [r for r in reports if r.rows]
    assert busy and all(r.too_few_rows for r in busy)
    fig = drift_heatmap(reports)
    score, grey = fig.data
    assert np.isnan(np.array(score.z, dtype=float)).all()
    assert grey.name == "too few rows" and np.nansum(np.array(grey.z, dtype=float)) == len(busy) * len(grey.y)
    assert "too few rows" in grey.hovertemplate and grey.customdata[0][-1] == busy[-1].rows
