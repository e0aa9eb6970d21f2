"""Figure builders: titles, units, per-version traces, production markers and empty states."""

from __future__ import annotations

import pandas as pd
import pytest

from opscore.models.registry import ProductionChange
from opscore.views import plots


def series(versions=("v1", "v2"), minutes=5, start=1_800_000_000) -> pd.DataFrame:
    rows = []
    for i, version in enumerate(versions):
        for m in range(minutes):
            count = 60 + 10 * i + m
            rows.append({"bucket_start": start + 60 * m, "version_id": version, "count": count, "errors": i,
                         "error_rate": i / count, "rps": count / 60, "mean_ms": 5.0 + i, "p50_ms": 4.0 + i + m,
                         "p95_ms": 9.0 + i + m, "p99_ms": 14.0 + i + m})
    return pd.DataFrame(rows)


def axis_titles(fig) -> tuple[str, str]:
    return fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


def test_latency_percentiles_draw_p50_p95_p99_per_version_in_milliseconds():
    data = series()
    fig = plots.latency_percentiles(data, title="Request latency per version (API, one per HTTP request)")
    # What the chart counts sits on a second, smaller line so a half-width chart shows it whole.
    assert fig.layout.title.text == "p50 / p95 / p99 request latency per version<br><sup>(API, one per HTTP request)</sup>"
    assert axis_titles(fig) == ("time (UTC)", "latency (ms)")
    names = [trace.name for trace in fig.data]
    assert names == ["v1 p50", "v1 p95", "v1 p99", "v2 p50", "v2 p95", "v2 p99"]
    v2_p95 = next(t for t in fig.data if t.name == "v2 p95")
    assert list(v2_p95.y) == data.loc[data.version_id == "v2", "p95_ms"].tolist()
    # One colour per version, one dash style per percentile.
    colours = {version: {t.line.color for t in fig.data if t.name.startswith(version)} for version in ("v1", "v2")}
    assert len(colours["v1"]) == len(colours["v2"]) == 1 and colours["v1"] != colours["v2"]
    assert [t.line.dash for t in fig.data[:3]] == ["dot", "solid", "dash"]


def test_a_glance_shows_p95_only():
    fig = plots.latency_percentiles(series(), percentiles=("p95_ms",))
    assert fig.layout.title.text == "p95 request latency per version"
    assert [trace.name for trace in fig.data] == ["v1 p95", "v2 p95"]


def test_buckets_without_traffic_are_gaps_not_zero_latency():
    data = series(versions=("v1",))
    data.loc[2, ["count", "p50_ms", "p95_ms", "p99_ms"]] = [0, float("nan"), float("nan"), float("nan")]
    fig = plots.latency_percentiles(data)
    assert len(fig.data[1].y) == len(data) - 1


def test_throughput_stacks_requests_per_second_and_error_rate_is_percent():
    data = series()
    fig = plots.throughput(data)
    assert axis_titles(fig) == ("time (UTC)", "requests per second")
    assert all(trace.stackgroup == "versions" for trace in fig.data)
    assert list(fig.data[0].y) == pytest.approx((data.loc[data.version_id == "v1", "count"] / 60).tolist())
    errors = plots.error_rate(data)
    assert axis_titles(errors) == ("time (UTC)", "failed requests (%)")
    assert list(errors.data[1].y) == pytest.approx((100 / data.loc[data.version_id == "v2", "count"]).tolist())


def test_production_changes_inside_the_window_are_marked_and_others_skipped():
    data = series()
    inside = ProductionChange(1_800_000_120, "v2", "promote")
    rollback = ProductionChange(1_800_000_180, "v1", "rollback")
    outside = ProductionChange(1_700_000_000, "v0", "initial")
    fig = plots.latency_percentiles(data, [inside, rollback, outside])
    assert len(fig.layout.shapes) == 2
    texts = [a.text for a in fig.layout.annotations]
    assert "v2 to production" in texts and "rollback to v1" in texts
    assert not any("v0" in t for t in texts)


@pytest.mark.parametrize("builder", [plots.latency_percentiles, plots.throughput, plots.error_rate])
def test_empty_series_gives_a_titled_figure_that_says_what_is_missing(builder):
    empty = series().iloc[:0]
    fig = builder(empty, empty_message="No requests logged in the last hour")
    assert plots.is_empty(fig)
    assert fig.layout.title.text
    assert fig.layout.yaxis.title.text
    assert [a.text for a in fig.layout.annotations] == ["No requests logged in the last hour"]
    long = builder(empty, empty_message="No requests logged in the last 24 hours: run opscore simulate, or score a file")
    assert all(len(line) <= 48 for line in long.layout.annotations[0].text.split("<br>"))


def test_metric_comparison_groups_bars_by_metric():
    metrics = pd.DataFrame({"metric": ["ROC-AUC", "accuracy"], "v1": [0.81, 0.79], "v2": [0.84, 0.80]})
    fig = plots.metric_comparison(metrics, left="v1", right="v2")
    assert fig.layout.title.text == "Holdout metrics: v1 vs v2"
    assert [t.name for t in fig.data] == ["v1", "v2"]
    assert list(fig.data[1].y) == [0.84, 0.80]
    assert plots.is_empty(plots.metric_comparison(metrics.iloc[:0], left="v1", right="v2"))


def test_version_colours_do_not_depend_on_order():
    assert plots.version_colours(["v2", "v1"]) == plots.version_colours(["v1", "v2", "v1"])
