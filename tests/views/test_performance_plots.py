"""Performance figures: intervals with every point, the holdout and alert lines, honest empty states."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opscore.monitoring.accuracy import AccuracyMonitor
from opscore.monitoring.chunking import Chunking
from opscore.monitoring.performance_estimation import PerformanceEstimator
from opscore.views import performance_plots, plots

START = 1_800_000_000.0
CALIBRATION = {"method": "isotonic", "kind": "positive_class", "positive_class": 1, "x": [0.0, 1.0], "y": [0.0, 1.0]}


def logged(n: int = 300, labelled: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    probability = rng.uniform(0, 1, n)
    label = (rng.random(n) < probability).astype(int)
    return pd.DataFrame({"at": START + np.arange(n) * 60.0, "prediction": (probability >= 0.5).astype(int),
                         "probability": probability, "label": label if labelled else [None] * n})


def test_accuracy_figure_draws_the_intervals_and_the_holdout_and_alert_lines():
    monitor = AccuracyMonitor("classification", {"accuracy": 0.8}, [0, 1], chunking=Chunking(frequency="1h"),
                              version_id="v1")
    result = monitor.calculate(logged())
    fig = performance_plots.accuracy_figure(result)
    assert fig.layout.title.text == "Accuracy on labelled traffic<br><sup>(v1)</sup>"
    assert fig.layout.xaxis.title.text == "time (UTC)" and "accuracy" in fig.layout.yaxis.title.text
    (trace,) = fig.data
    table = result.to_df()
    assert list(trace.y) == table["accuracy"].tolist()
    assert np.allclose(trace.error_y.arrayminus, table["accuracy"] - table["accuracy_low"])
    assert [s.y0 for s in fig.layout.shapes] == [0.8, result.alert_line]


def test_estimated_accuracy_figure_draws_the_band_and_realized_points():
    result = PerformanceEstimator("classification", CALIBRATION, [0, 1], baseline=0.75,
                                  chunking=Chunking(frequency="1h")).calculate(logged())
    fig = performance_plots.estimated_accuracy_figure(result)
    names = [t.name for t in fig.data]
    assert names == [None, "±3σ sampling band", "estimated", "realized (95% CI)"]
    assert list(fig.data[2].y) == result.to_df()["estimated_accuracy"].tolist()
    unlabelled = PerformanceEstimator("classification", CALIBRATION, [0, 1],
                                      chunking=Chunking(frequency="1h")).calculate(logged(labelled=False))
    assert "realized (95% CI)" not in [t.name for t in performance_plots.estimated_accuracy_figure(unlabelled).data]


def test_empty_states_say_what_is_missing():
    no_labels = AccuracyMonitor("classification", {"accuracy": 0.8}, [0, 1]).calculate(logged(0))
    fig = performance_plots.accuracy_figure(no_labels)
    assert plots.is_empty(fig) and "POST /feedback" in fig.layout.annotations[0].text
    regression = PerformanceEstimator("regression", None).calculate(pd.DataFrame())
    fig = performance_plots.estimated_accuracy_figure(regression)
    assert plots.is_empty(fig) and "regression" in fig.layout.annotations[0].text
