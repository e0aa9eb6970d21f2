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
    now = time.time() + 60
    reports = drift_over_time(served, bucket_of(now - 3 * 3600), now, 3600, version="v1")
    fig = drift_heatmap(reports)
    heat = fig.data[0]
    with_traffic = [r for r in reports if r.rows]
    assert len(heat.x) == len(with_traffic) and list(heat.y) == list(with_traffic[0].report.columns)
    for i, name in enumerate(heat.y):
        column = with_traffic[-1].report.columns[name]
        expected = column.threshold / column.p_value if column.p_value is not None else column.statistic / column.threshold
        assert heat.z[i][-1] == pytest.approx(min(expected, 10.0))
    assert is_empty(drift_heatmap([r for r in reports if not r.rows]))
