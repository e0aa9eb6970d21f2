"""Telemetry: the background writer, rollups, percentiles, feedback and retention, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time

import numpy as np
import pytest
from sqlalchemy import event, func, select

from opscore.config import replace
from opscore.data.labelled_traffic import labelled_predictions
from opscore.exceptions import BadInputError
from opscore.serving import feedback, telemetry_queries, telemetry_writer
from opscore.serving.latency_histogram import LATENCY_BUCKETS_MS
from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter
from opscore.store import Store, _make_engine, latency_rollups, open_store, predictions

NOW = time.time()


def record(i: int, *, at: float, latency: float = 5.0, version: str = "v1", source: str = "api",
           status: str = "ok", request_id: str | None = None) -> PredictionRecord:
    return PredictionRecord(
        request_id or f"req-{i}", at, version, source, latency, status,
        {"age": 30 + i % 40, "employment": "salaried", "income": None}, i % 2,
        0.25 if status == "ok" else None, None if status == "ok" else "model failed",
    )


def raw_count(store: Store) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(predictions)).scalar_one()


def rollup_totals(store: Store) -> dict[tuple[int, str, str], tuple[int, int]]:
    with store.read() as conn:
        rows = conn.execute(select(latency_rollups.c.minute, latency_rollups.c.version_id, latency_rollups.c.source,
                                   latency_rollups.c["count"], latency_rollups.c.errors)).all()
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


def raw_totals(store: Store) -> dict[tuple[int, str, str], tuple[int, int]]:
    with store.read() as conn:
        rows = conn.execute(select(predictions.c.at, predictions.c.version_id, predictions.c.source,
                                   predictions.c.status)).all()
    out: dict[tuple[int, str, str], list[int]] = {}
    for at, version, source, status in rows:
        entry = out.setdefault((int(at // 60), version, source), [0, 0])
        entry[0] += 1
        entry[1] += status != "ok"
    return {k: (v[0], v[1]) for k, v in out.items()}


def test_writer_writes_everything_and_rollups_match_raw_rows(any_workspace):
    settings = replace(any_workspace, telemetry_batch=700, telemetry_flush_seconds=0.05)
    store = open_store(settings)
    writer = TelemetryWriter(settings).start()
    sources = ["api", "batch", "dashboard"]
    for i in range(3_000):
        assert writer.submit(record(i, at=NOW - 600 + i * 0.2, latency=1 + i % 97, version=f"v{1 + i % 2}",
                                    source=sources[i % 3], status="error" if i % 37 == 0 else "ok"))
    assert writer.flush(timeout=60)
    stats = writer.stats
    assert stats.written == stats.submitted == 3_000
    assert stats.dropped == stats.backlog == 0
    assert raw_count(store) == 3_000
    rollups = rollup_totals(store)
    assert rollups == raw_totals(store)
    assert sum(errors for _, errors in rollups.values()) == len(range(0, 3_000, 37))
    # A second round merges into the existing rollup rows instead of replacing them.
    writer.submit_many(record(10_000 + i, at=NOW - 600 + i * 0.2, latency=3.0) for i in range(500))
    assert writer.close(timeout=60)
    assert raw_count(store) == 3_500
    assert rollup_totals(store) == raw_totals(store)


def test_concurrent_writers_do_not_lose_rollup_counts(any_workspace):
    """Two replicas logging the same minutes at once: every rollup merge must see the other's."""
    settings = replace(any_workspace, telemetry_batch=50, telemetry_flush_seconds=0.01)
    writers = [TelemetryWriter(settings).start() for _ in range(2)]

    def log_from(k: int) -> None:
        for i in range(40):
            writers[k].submit_many(record(k * 100_000 + i * 50 + j, at=NOW + j) for j in range(50))
            time.sleep(0.002)

    threads = [threading.Thread(target=log_from, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(w.close(timeout=60) for w in writers)
    store = open_store(any_workspace)
    assert raw_count(store) == 4_000
    assert rollup_totals(store) == raw_totals(store)


def test_close_writes_what_is_left(workspace):
    # Nothing would be written for a minute on its own: close must do it.
    settings = replace(workspace, telemetry_flush_seconds=60.0, telemetry_batch=1_000_000)
    writer = TelemetryWriter(settings).start()
    writer.submit_many(record(i, at=NOW) for i in range(250))
    assert writer.close(timeout=30)
    assert raw_count(open_store(workspace)) == 250
    assert not writer.submit(record(999, at=NOW)), "a closed writer refuses (and counts) new records"
    assert writer.stats.dropped == 1


def test_full_buffer_drops_and_counts(workspace):
    settings = replace(workspace, telemetry_buffer=10)
    writer = TelemetryWriter(settings)  # not started: nothing drains the buffer meanwhile
    accepted = [writer.submit(record(i, at=NOW)) for i in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert writer.submit_many(record(100 + i, at=NOW) for i in range(4)) == 0
    assert writer.stats.dropped == 9
    assert writer.stats.backlog == 10
    assert writer.flush(timeout=30)
    assert writer.stats.written == 10
    assert raw_count(open_store(workspace)) == 10


def test_store_outage_loses_no_record(workspace):
    """Another process holds the database exclusively for a while: the writer retries, nothing is lost."""
    open_store(workspace)  # schema
    url = workspace.database_url
    store = Store(url, _make_engine(url))

    @event.listens_for(store.engine, "connect")
    def _impatient(dbapi_conn, _record) -> None:  # fail fast instead of waiting 30 s on the lock
        dbapi_conn.execute("PRAGMA busy_timeout=50")

    settings = replace(workspace, telemetry_batch=200, telemetry_flush_seconds=0.02)
    writer = TelemetryWriter(settings, store=store).start()
    blocker = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        submitted = 0
        outage_ends = time.monotonic() + 2.0
        while time.monotonic() < outage_ends:
            writer.submit_many(record(submitted + i, at=NOW + submitted * 0.001) for i in range(100))
            submitted += 100
            time.sleep(0.01)
        assert writer.stats.failures >= 3, "the lock should have made writes fail"
        assert writer.stats.written == 0
        assert "locked" in (writer.stats.last_error or "")
    finally:
        blocker.rollback()
        blocker.close()
    writer.submit_many(record(submitted + i, at=NOW) for i in range(100))
    submitted += 100
    assert writer.flush(timeout=30)
    assert writer.close()
    assert writer.stats.written == submitted
    assert writer.stats.dropped == 0
    assert raw_count(store) == submitted
    assert rollup_totals(store) == raw_totals(store)
    store.engine.dispose()


def test_a_reused_request_id_is_refused_without_holding_back_the_batch(any_workspace):
    store = open_store(any_workspace)
    writer = TelemetryWriter(any_workspace)
    writer.submit_many(record(i, at=NOW) for i in range(10))
    assert writer.flush(timeout=30)
    writer.submit_many([record(50, at=NOW, request_id="req-3")] + [record(20 + i, at=NOW) for i in range(5)])
    assert writer.flush(timeout=30)
    stats = writer.stats
    assert (stats.written, stats.rejected) == (15, 1)
    assert "req-3" in stats.last_error
    assert raw_count(store) == 15
    assert rollup_totals(store) == raw_totals(store)


def _bucket_width(value: float) -> float:
    i = np.searchsorted(LATENCY_BUCKETS_MS, value, side="right") - 1
    return float(LATENCY_BUCKETS_MS[i + 1] - LATENCY_BUCKETS_MS[i])


def _log(settings, records) -> None:
    writer = TelemetryWriter(settings)
    writer.submit_many(records)
    assert writer.flush(timeout=60)


def test_histogram_percentiles_are_within_a_bucket_of_numpy(any_workspace):
    store = open_store(any_workspace)
    rng = np.random.default_rng(3)
    latencies = np.concatenate([rng.lognormal(1.2, 0.5, 6_000), rng.lognormal(4.0, 0.3, 400)])  # a slow tail
    start = (NOW // 60 - 30) * 60
    ats = start + np.sort(rng.uniform(0, 600, latencies.size))
    _log(any_workspace, [record(i, at=float(ats[i]), latency=float(latencies[i]),
                                status="error" if i % 100 == 0 else "ok") for i in range(latencies.size)])

    window = telemetry_queries.window_percentiles(store, start, start + 600)
    exact = telemetry_queries.exact_percentiles(store, start, start + 600)
    expected = np.percentile(latencies, [50, 95, 99])
    assert exact["count"] == window["count"] == latencies.size
    assert exact["errors"] == window["errors"] == 64
    assert [exact["p50_ms"], exact["p95_ms"], exact["p99_ms"]] == pytest.approx(expected.tolist(), rel=1e-9)
    for key, value in zip(["p50_ms", "p95_ms", "p99_ms"], expected, strict=True):
        assert abs(window[key] - value) <= _bucket_width(value), key
    assert window["mean_ms"] == pytest.approx(latencies.mean())
    assert exact["mean_ms"] == pytest.approx(latencies.mean())

    series = telemetry_queries.p95_per_minute(store, start, start + 600)
    assert series["count"].sum() == latencies.size
    minute_of = (ats // 60 * 60).astype(int)
    for row in series.itertuples():
        in_minute = latencies[minute_of == row.bucket_start]
        assert row.count == in_minute.size
        true_p95 = np.percentile(in_minute, 95)
        assert abs(row.p95_ms - true_p95) <= _bucket_width(true_p95)


def test_histogram_percentiles_of_a_few_far_apart_values(workspace):
    """Like numpy, interpolate between neighbouring values even when they sit in distant buckets."""
    store = open_store(workspace)
    values = [1.0, 10.0, 100.0, 1_000.0]
    start = (NOW // 60 - 5) * 60
    _log(workspace, [record(i, at=start + i, latency=v) for i, v in enumerate(values)])
    window = telemetry_queries.window_percentiles(store, start, start + 60)
    for key, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        expected = np.percentile(values, q)  # 55, 865, 973
        assert abs(window[key] - expected) <= _bucket_width(expected), key


def test_latency_series_splits_versions_filters_and_steps(any_workspace):
    store = open_store(any_workspace)
    start = (NOW // 300 - 4) * 300
    _log(any_workspace, [record(i, at=start + i, latency=2.0 if i % 2 else 40.0, version="v1" if i % 2 else "v2",
                                source="api" if i % 4 < 2 else "shadow") for i in range(600)])
    per_minute = telemetry_queries.latency_series(store, start, start + 600)
    assert list(per_minute.columns) == ["bucket_start", "version_id", "count", "errors", "error_rate", "rps",
                                        "mean_ms", "p50_ms", "p95_ms", "p99_ms", "rows", "rows_per_s"]
    assert len(per_minute) == 20 and set(per_minute["version_id"]) == {"v1", "v2"}
    assert (per_minute["count"] == 30).all()
    assert per_minute["rps"].tolist() == pytest.approx([0.5] * 20)
    v2 = telemetry_queries.latency_series(store, start, start + 600, version_id="v2", source="shadow", step_seconds=300)
    assert v2["count"].tolist() == [75, 75]  # even i (v2) with i % 4 == 2 (shadow)
    assert v2["mean_ms"].tolist() == pytest.approx([40.0, 40.0])
    assert v2["bucket_start"].tolist() == [start, start + 300]
    assert telemetry_queries.latency_series(store, start + 3_600, start + 7_200).empty
    with pytest.raises(BadInputError):
        telemetry_queries.latency_series(store, start, start + 600, step_seconds=90)


def test_version_summary_live_window_and_recent(any_workspace):
    store = open_store(any_workspace)
    _log(any_workspace, [record(i, at=NOW - 100 + i, latency=10.0, version="v1" if i < 80 else "v2",
                                status="error" if i >= 95 else "ok") for i in range(100)])
    summary = telemetry_queries.version_latency_summary(store).set_index("version_id")
    assert summary.loc["v1", "count"] == 80 and summary.loc["v2", "count"] == 20
    assert summary.loc["v2", "errors"] == 5 and summary.loc["v2", "error_rate"] == pytest.approx(0.25)
    assert abs(summary.loc["v1", "p95_ms"] - 10.0) <= _bucket_width(10.0)
    assert summary.loc["v1", "first_at"] <= NOW - 100 < summary.loc["v1", "last_at"]

    live = telemetry_queries.live_window(store, 20)
    assert live["count"] == 20
    assert live["versions"] == {"v2": 20}
    assert live["error_rate"] == pytest.approx(0.25)
    assert live["avg_latency_ms"] == pytest.approx(10.0)
    assert live["rate_per_s"] == pytest.approx(1.0)

    recent = telemetry_queries.recent_predictions(store, limit=5)
    assert recent["request_id"].tolist() == [f"req-{i}" for i in range(99, 94, -1)]
    newer = telemetry_queries.recent_predictions(store, since_id=int(recent["id"].iloc[1]))
    assert newer["request_id"].tolist() == ["req-99"]
    assert telemetry_queries.live_window(store, 0)["count"] == 0


def test_feedback_joins_labels_to_logged_predictions(any_workspace):
    store = open_store(any_workspace)
    _log(any_workspace, [record(i, at=NOW - 10 + i) for i in range(5)])
    result = feedback.record_feedback(store, [{"request_id": "req-1", "label": 1}, {"request_id": "req-3", "label": 0},
                                               {"request_id": "nobody", "label": 1}])
    assert result.joined == 2
    assert result.unknown == ["nobody"]
    table = labelled_predictions(store)
    assert table["request_id"].tolist() == ["req-1", "req-3"]
    assert table["label"].tolist() == [1, 0]
    assert table["prediction"].tolist() == [1, 1]
    assert {"age", "employment", "income"} <= set(table.columns)
    assert table["age"].tolist() == [31, 33]
    assert telemetry_queries.recent_predictions(store).set_index("request_id").loc["req-3", "label"] == 0
    with pytest.raises(BadInputError, match="request_id"):
        feedback.record_feedback(store, [{"label": 1}])
    with pytest.raises(BadInputError, match="label"):
        feedback.record_feedback(store, [{"request_id": "req-2"}])


def test_retention_deletes_only_old_raw_rows(any_workspace):
    store = open_store(any_workspace)
    old = [record(i, at=NOW - 40 * 86_400 + i) for i in range(30)]
    recent = [record(100 + i, at=NOW - 86_400 + i) for i in range(20)]
    _log(any_workspace, old + recent)
    rollups_before = rollup_totals(store)
    assert telemetry_writer.apply_retention(store, 30) == 30
    assert raw_count(store) == 20
    assert rollup_totals(store) == rollups_before, "latency history outlives the raw rows"
    assert telemetry_queries.window_percentiles(store, NOW - 41 * 86_400, NOW - 39 * 86_400)["count"] == 30
    assert telemetry_writer.apply_retention(store, 30) == 0
    with pytest.raises(BadInputError):
        telemetry_writer.apply_retention(store, -1)


def test_submit_is_safe_from_many_threads(workspace):
    writer = TelemetryWriter(replace(workspace, telemetry_batch=300, telemetry_flush_seconds=0.02)).start()

    def burst(offset: int) -> None:
        for i in range(500):
            writer.submit(record(offset + i, at=NOW))

    threads = [threading.Thread(target=burst, args=(k * 1_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.close(timeout=60)
    assert writer.stats.written == 2_000
    assert raw_count(open_store(workspace)) == 2_000


def test_a_running_writer_enforces_retention_itself(workspace):
    settings = replace(workspace, retention_days=30, retention_check_seconds=0.0, telemetry_flush_seconds=0.02)
    store = open_store(settings)
    writer = TelemetryWriter(settings).start()
    writer.submit_many([record(i, at=NOW - 40 * 86_400) for i in range(25)] + [record(100, at=NOW)])
    assert writer.flush(timeout=30)
    deadline = time.monotonic() + 10
    while writer.retention_removed < 25 and time.monotonic() < deadline:
        time.sleep(0.02)  # the writer's loop wakes every flush interval and checks retention
    writer.close()
    assert writer.retention_removed == 25 and raw_count(store) == 1
    assert telemetry_queries.window_percentiles(store, NOW - 41 * 86_400, NOW - 39 * 86_400)["count"] == 25


def request_of(first: int, rows: int, *, at: float, latency: float, status: str = "ok",
               source: str = "api") -> list[PredictionRecord]:
    """The records of one ``rows``-row request as the service logs it: each row with the request's
    latency, the first row opening the request."""
    records = [record(first + k, at=at, latency=latency, status=status, source=source) for k in range(rows)]
    for k, r in enumerate(records):
        r.request_rows = rows if k == 0 else 0
    return records


def test_a_64_row_request_is_one_request_of_64_rows(any_workspace):
    store = open_store(any_workspace)
    start = (NOW // 60 - 10) * 60
    # One 64-row request at 200 ms, then 36 single-row requests at 10 ms, in the same minute.
    records = request_of(0, 64, at=start + 1, latency=200.0)
    records += [record(100 + k, at=start + 2 + k, latency=10.0) for k in range(36)]
    _log(any_workspace, records)
    for figures in (telemetry_queries.window_percentiles(store, start, start + 60),
                    telemetry_queries.exact_percentiles(store, start, start + 60)):
        assert (figures["count"], figures["rows"]) == (37, 100)
        # Counted by rows, the slow request would be 64 % of the traffic and its latency the median.
        assert abs(figures["p50_ms"] - 10.0) <= _bucket_width(10.0)
        assert figures["mean_ms"] == pytest.approx((200.0 + 36 * 10.0) / 37)
    series = telemetry_queries.latency_series(store, start, start + 60)
    assert series[["count", "rows"]].values.tolist() == [[37, 100]]
    assert series["rps"].item() == pytest.approx(37 / 60) and series["rows_per_s"].item() == pytest.approx(100 / 60)
    summary = telemetry_queries.version_latency_summary(store).set_index("version_id")
    assert (summary.loc["v1", "count"], summary.loc["v1", "rows"]) == (37, 100)
    live = telemetry_queries.live_window(store, 1_000)
    assert (live["count"], live["requests"]) == (100, 37)
    assert live["avg_latency_ms"] == pytest.approx((200.0 + 36 * 10.0) / 37)


def test_a_failed_request_counts_once_however_many_rows(workspace):
    store = open_store(workspace)
    start = (NOW // 60 - 10) * 60
    _log(workspace, request_of(0, 50, at=start + 1, latency=5.0, status="error")
         + [record(100 + k, at=start + 2, latency=5.0) for k in range(3)])
    figures = telemetry_queries.window_percentiles(store, start, start + 60)
    assert (figures["count"], figures["errors"], figures["rows"]) == (4, 1, 53)
    with store.read() as conn:
        row_errors = conn.execute(select(latency_rollups.c.row_errors)).scalar_one()
    assert row_errors == 50


def test_sources_stay_apart(workspace):
    store = open_store(workspace)
    start = (NOW // 60 - 10) * 60
    _log(workspace, [record(k, at=start + 1, latency=8.0) for k in range(20)]
         + [record(100 + k, at=start + 2, latency=0.3, source="batch") for k in range(500)])
    api = telemetry_queries.window_percentiles(store, start, start + 60, source="api")
    batch = telemetry_queries.window_percentiles(store, start, start + 60, source="batch")
    assert (api["count"], batch["count"]) == (20, 500)
    assert abs(api["p95_ms"] - 8.0) <= _bucket_width(8.0)
    assert telemetry_queries.exact_percentiles(store, start, start + 60, source="api")["count"] == 20
    assert telemetry_queries.live_window(store, 1_000, source="api")["count"] == 20
    assert set(telemetry_queries.recent_predictions(store, limit=50, source="api")["source"]) == {"api"}
    assert telemetry_queries.first_traffic_at(store, source="batch") == start


def test_refusals_are_counted_by_reason_and_written_with_the_next_batch(any_workspace):
    store = open_store(any_workspace)
    writer = TelemetryWriter(replace(any_workspace, telemetry_flush_seconds=0.02)).start()
    start = (NOW // 120 - 10) * 120
    for k in range(1_000):
        writer.count_refusal("v1", "malformed_body", at=start + k % 60)
    for _ in range(3):
        writer.count_refusal("v1", "too_large", at=start + 61)
    writer.count_refusal("v2", "invalid_rows", at=start + 5)
    assert writer.flush(timeout=30)
    assert writer.stats.backlog == 0 and raw_count(store) == 0  # refusals log no prediction
    series = telemetry_queries.refusal_series(store, start, start + 120)
    totals = series.groupby("reason")["count"].sum().to_dict()
    assert totals == {"malformed_body": 1_000, "too_large": 3, "invalid_rows": 1}
    only_v1 = telemetry_queries.refusal_series(store, start, start + 120, version_id="v1", step_seconds=120)
    assert only_v1.values.tolist() == [[start, "malformed_body", 1_000], [start, "too_large", 3]]
    # Counts merge with what is stored already, and nothing counted before close is lost.
    writer.count_refusal("v1", "malformed_body", at=start + 30)
    assert writer.close(timeout=30)
    assert telemetry_queries.refusal_series(store, start, start + 60, version_id="v1")["count"].sum() == 1_001


def test_a_running_writer_enforces_rollup_retention(workspace):
    settings = replace(workspace, retention_days=30, rollup_retention_days=400, retention_check_seconds=0.0,
                       telemetry_flush_seconds=0.02)
    store = open_store(settings)
    writer = TelemetryWriter(settings).start()
    writer.count_refusal("v1", "malformed_body", at=NOW - 500 * 86_400)
    writer.count_refusal("v1", "malformed_body", at=NOW - 100 * 86_400)
    writer.submit_many([record(i, at=NOW - 500 * 86_400) for i in range(5)]
                       + [record(100 + i, at=NOW - 100 * 86_400) for i in range(7)] + [record(200, at=NOW)])
    assert writer.flush(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and telemetry_queries.window_percentiles(
            store, NOW - 501 * 86_400, NOW - 499 * 86_400)["count"]:
        time.sleep(0.02)  # the writer's loop wakes every flush interval and checks retention
    writer.close()
    assert telemetry_queries.window_percentiles(store, NOW - 501 * 86_400, NOW - 499 * 86_400)["count"] == 0
    assert telemetry_queries.window_percentiles(store, NOW - 101 * 86_400, NOW - 99 * 86_400)["count"] == 7
    refused = telemetry_queries.refusal_series(store, NOW - 501 * 86_400, NOW)
    assert refused["count"].sum() == 1, "refusals past rollup_retention_days go too"
    with pytest.raises(BadInputError):
        telemetry_writer.apply_rollup_retention(store, -1)


def test_version_summary_sums_in_sql_and_reads_only_a_bounded_window(any_workspace):
    """The per-version summary must not read every rollup row ever written: totals are summed by the
    database, and only each version's last VERSION_P95_DAYS with traffic are read for its p95."""
    store = open_store(any_workspace)
    days = telemetry_queries.VERSION_P95_DAYS
    # A request every hour for 3 x VERSION_P95_DAYS days, by two versions: one rollup row each.
    hours = int(3 * days * 24)
    old_latency, new_latency = 50.0, 10.0
    _log(any_workspace, [record(i, at=NOW - (hours - i) * 3600, version="v1" if i % 2 else "v2",
                                latency=old_latency if i < hours - days * 24 else new_latency)
                         for i in range(hours)])
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if "latency_rollups" in statement:
            statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        summary = telemetry_queries.version_latency_summary(store).set_index("version_id")
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    # What the database handed back for those statements, re-run as they were sent.
    with store.engine.connect() as conn:
        fetched = sum(len(conn.exec_driver_sql(sql, params).fetchall()) for sql, params in statements)
    within = 2 * days * 24  # the rows of both versions' last VERSION_P95_DAYS (one an hour)
    assert fetched <= 2 + within + 2, f"{fetched} rollup rows read for a summary of 2 versions"
    assert summary.loc["v1", "count"] + summary.loc["v2", "count"] == hours
    assert summary.loc["v1", "first_at"] == (NOW - (hours - 1) * 3600) // 60 * 60
    assert abs(summary.loc["v1", "p95_ms"] - new_latency) <= _bucket_width(new_latency)
