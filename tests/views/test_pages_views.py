"""What the dashboard pages show, assembled from the registry, the ledger and the telemetry store."""

from __future__ import annotations

import time

import pytest

from opscore.access.actors import Actor
from opscore.demo.credit_data import credit_applications
from opscore.exceptions import BadInputError
from opscore.serving import feedback, telemetry_queries
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import open_store
from opscore.views import latency, live, overview, windows

ALICE = Actor("alice", "operator", "dashboard")
VIEWER = Actor("viewer", "viewer", "dashboard")


def test_windows_cover_whole_minutes_and_all_time_starts_at_the_first_request(served):
    window = windows.resolve_window(served, "Last hour", now=1_800_000_030)
    assert (window.start, window.end) == (1_800_000_060 - 3600, 1_800_000_060)
    assert window.step_seconds == 60
    assert windows.resolve_window(served, "Last 24 hours").step_seconds == 900
    first = telemetry_queries.version_latency_summary(open_store(served))["first_at"].min()
    assert windows.resolve_window(served, "All time").start == first
    with pytest.raises(BadInputError, match="unknown time window"):
        windows.resolve_window(served, "Last fortnight")


def test_overview_headline_figures(served):
    view = overview.overview(served, "Last hour")
    assert (view.production.version_id, view.candidate.version_id) == ("v1", "v2")
    assert view.requests == 200 and view.errors == 0 and view.error_rate == 0
    assert view.requests_per_minute == pytest.approx(200 / 60)
    assert view.previous_requests == 0 and view.previous_p95_ms is None
    assert view.p95_ms == pytest.approx(telemetry_queries.window_percentiles(
        open_store(served), view.window.start, view.window.end)["p95_ms"])
    assert view.last_retrain is None
    only_v2 = overview.overview(served, "Last hour", "v2")
    assert only_v2.requests == 80


def test_overview_of_an_empty_workspace(workspace):
    view = overview.overview(workspace, "Last 24 hours")
    assert view.versions == 0 and view.production is None and view.requests == 0
    assert view.p95_ms is None and view.error_rate is None and view.series.empty


def test_latency_report_shows_exact_and_estimated_p95(served, monkeypatch):
    report = latency.latency_report(served, "Last hour")
    assert report.per_version["version"].tolist() == ["v1", "v2"]
    assert report.per_version["requests"].tolist() == [120, 80]
    assert report.exact["count"] == report.estimated["count"] == 200
    # The histogram buckets are 4 % wide: the estimate lands within a bucket of the exact figure.
    assert report.estimated["p95_ms"] == pytest.approx(report.exact["p95_ms"], rel=0.05)
    assert [m.version_id for m in report.markers] == ["v1"]
    monkeypatch.setattr(latency, "EXACT_ROW_LIMIT", 100)
    cheap = latency.latency_report(served, "Last hour")
    assert cheap.exact is None and cheap.exact_needs_request
    assert latency.latency_report(served, "Last hour", exact=True).exact["count"] == 200


def test_live_feed_shows_the_newest_predictions(served):
    feed = live.live_feed(served, limit=10)
    assert len(feed.recent) == 10
    assert set(feed.recent["version"]) == {"v2"}  # the 80 scored by v2 were logged last
    assert feed.stats["count"] == 200 and feed.stats["versions"] == {"v1": 120, "v2": 80}
    assert feed.series["count"].sum() == 200
    assert set(feed.recent["label"]) == {""} and set(feed.recent["prediction"]) <= {"0", "1"}


def test_live_feed_shows_labels_as_they_were_sent(served):
    store = open_store(served)
    newest = telemetry_queries.recent_predictions(store, limit=2)["request_id"].tolist()
    feedback.record_feedback(store, [{"request_id": newest[0], "label": 1}])
    assert live.live_feed(served, limit=2).recent["label"].tolist() == ["1", ""]


def log_at(settings, rows: int, at: float, latency_ms: float, errors: int = 0, source: str = "api") -> None:
    """``rows`` real predictions by production, logged as if made at ``at`` with a given latency."""
    from opscore.data.features import validate_frame
    from opscore.serving.predictor import prediction_records, production_version

    loaded = production_version(settings)
    valid = validate_frame(loaded.schema, credit_applications(n_rows=rows, seed=13).drop(columns="default"))
    records = prediction_records(loaded, valid.frame, loaded.predict_frame(valid.frame), source=source,
                                 latency_ms=latency_ms, at=at)
    for record in records[:errors]:
        record.status, record.prediction, record.error = "error", None, "model call failed"
    writer = TelemetryWriter(settings).start()
    writer.submit_many(records)
    assert writer.close()


def test_overview_changes_against_the_previous_window(trained):
    now = time.time()
    log_at(trained, 150, now - 5400, latency_ms=5.0)
    log_at(trained, 200, now - 600, latency_ms=10.0, errors=2)
    view = overview.overview(trained, "Last hour")
    assert view.comparable and view.previous_requests == 150
    changes = view.changes()
    assert changes["requests_per_minute"] == pytest.approx(50 / 60)
    assert changes["p95_ms"] == pytest.approx(5.0, rel=0.05)
    assert changes["error_rate"] == pytest.approx(1.0)


def test_a_quiet_previous_window_is_not_compared(trained):
    now = time.time()
    log_at(trained, 20, now - 5400, latency_ms=5.0)
    log_at(trained, 200, now - 600, latency_ms=10.0)
    view = overview.overview(trained, "Last hour")
    assert not view.comparable
    assert view.changes() == {"requests_per_minute": None, "p95_ms": None, "error_rate": None}


def test_quiet_steps_read_as_zero_traffic(trained):
    now = time.time()
    log_at(trained, 60, now - 1800, latency_ms=5.0)
    log_at(trained, 30, now - 300, latency_ms=5.0)
    window = windows.resolve_window(trained, "Last hour", now=now)
    series = windows.window_series(trained, window, now=now)
    assert len(series) == 60  # one row per minute of the hour, traffic or not
    busy = series[series["count"] > 0]
    assert busy["count"].tolist() == [60, 30]
    assert busy["rps"].tolist()[0] == pytest.approx(1.0)
    quiet = series[series["count"] == 0]
    assert (quiet["rps"] == 0).all() and quiet["p95_ms"].isna().all()


def test_batch_scoring_never_moves_the_services_figures(trained):
    now = time.time()
    log_at(trained, 100, now - 600, latency_ms=10.0)
    before = (overview.overview(trained, "Last hour"), latency.latency_report(trained, "Last hour"),
              live.live_feed(trained))
    # A big file scored in the same minutes: each row timed as its share of a chunk, some slow.
    log_at(trained, 400, now - 590, latency_ms=0.2, source="batch")
    log_at(trained, 50, now - 580, latency_ms=900.0, errors=50, source="batch")
    view, report, feed = (overview.overview(trained, "Last hour"), latency.latency_report(trained, "Last hour"),
                          live.live_feed(trained))
    assert (view.requests, view.p95_ms, view.errors) == (before[0].requests, before[0].p95_ms, 0)
    assert report.estimated == before[1].estimated and report.exact == before[1].exact
    assert report.per_version.equals(before[1].per_version)
    assert feed.stats == before[2].stats and set(feed.recent["source"]) == {"api"}
    # The batch rows are there, on their own, when asked for.
    batch = latency.latency_report(trained, "Last hour", source="batch")
    assert (batch.estimated["count"], batch.estimated["errors"]) == (450, 50)
    assert batch.source.throughput_title.startswith("Rows scored per second (batch scoring")
    assert overview.overview(trained, "Last hour", source="batch").requests == 450
    assert live.live_feed(trained, source="batch").stats["count"] == 450
    with pytest.raises(BadInputError, match="unknown traffic source"):
        overview.overview(trained, "Last hour", source="nightly")
