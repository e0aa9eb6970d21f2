"""The store creates its schema once, refuses a newer one, and works on both backends."""

from __future__ import annotations

import stat
import time

import pytest
from sqlalchemy import inspect, select, text, update

from opscore.exceptions import IntegrityError
from opscore.store import SCHEMA_VERSION, aliases, dispose_stores, open_store, schema_info


def test_schema_is_created_with_a_version_and_both_aliases(any_workspace):
    store = open_store(any_workspace)
    with store.read() as conn:
        version = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "schema_version")).scalar()
        names = set(conn.execute(select(aliases.c.name)).scalars())
    assert int(version) == SCHEMA_VERSION and names == {"production", "candidate"}


def test_opening_twice_keeps_data(any_workspace):
    store = open_store(any_workspace)
    with store.write() as conn:
        conn.execute(update(aliases).where(aliases.c.name == "candidate").values(generation=5))
    dispose_stores()
    with open_store(any_workspace).read() as conn:
        assert conn.execute(select(aliases.c.generation).where(aliases.c.name == "candidate")).scalar() == 5


def test_a_newer_schema_is_refused_untouched(any_workspace):
    store = open_store(any_workspace)
    with store.write() as conn:
        conn.execute(update(schema_info).values(value=str(SCHEMA_VERSION + 1)))
    dispose_stores()
    with pytest.raises(IntegrityError, match="newer than this opscore"):
        open_store(any_workspace)


def test_sqlite_runs_in_wal_mode(workspace):
    with open_store(workspace).read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_new_sqlite_store_is_private_to_its_owner(workspace):
    store = open_store(workspace)
    with store.write() as conn:
        conn.execute(update(aliases).where(aliases.c.name == "candidate").values(generation=1))
    folder = workspace.workspace / "metrics"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    written = [p for p in folder.iterdir() if p.name.startswith("opscore.db")]
    assert {p.name for p in written} >= {"opscore.db", "opscore.db-wal"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written), written
def _as_schema_1(store) -> None:
    """Take a store back to the shape schema 1 had: no refusals table, no request/row columns, no source index."""
    with store.write() as conn:
        conn.execute(text("DROP INDEX ix_predictions_source_at"))
        conn.execute(text("DROP INDEX ix_predictions_labelled"))
        conn.execute(text("DROP TABLE estimate_rollups"))
        conn.execute(text("DROP TABLE refusals"))
        conn.execute(text("ALTER TABLE predictions DROP COLUMN request_rows"))
        conn.execute(text("ALTER TABLE latency_rollups DROP COLUMN row_count"))
        conn.execute(text("ALTER TABLE latency_rollups DROP COLUMN row_errors"))
        conn.execute(text("ALTER TABLE predictions DROP COLUMN deployment_id"))
        conn.execute(text("ALTER TABLE predictions DROP COLUMN role"))
        conn.execute(update(schema_info).values(value="1"))


def test_a_schema_1_workspace_is_migrated_and_its_history_kept(any_workspace):
    from opscore.serving import telemetry_queries
    from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter

    now = time.time()
    start = (now // 60 - 5) * 60

    def records(prefix: str, n: int, at: float) -> list[PredictionRecord]:
        return [PredictionRecord(f"{prefix}{i}", at, "v1", "api", 4.0, "ok" if i % 10 else "error", {"age": 40},
                                 1, 0.5) for i in range(n)]

    writer = TelemetryWriter(any_workspace)
    writer.submit_many(records("old-", 30, start + 1))
    assert writer.flush(30)
    _as_schema_1(open_store(any_workspace))
    dispose_stores()

    store = open_store(any_workspace)
    with store.read() as conn:
        version = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "schema_version")).scalar()
        columns = {c["name"] for c in inspect(conn).get_columns("latency_rollups")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("predictions")}
        tables = set(inspect(conn).get_table_names())
    assert int(version) == SCHEMA_VERSION == 4
    assert {"row_count", "row_errors"} <= columns and {"ix_predictions_source_at", "ix_predictions_labelled"} <= indexes
    assert "estimate_rollups" in tables
    # Before schema 2 every row was counted as a request: the migrated history reads that way.
    old = telemetry_queries.window_percentiles(store, start, start + 60)
    assert (old["count"], old["errors"], old["rows"]) == (30, 3, 30)
    assert telemetry_queries.exact_percentiles(store, start, start + 60)["count"] == 30
    # New traffic is counted by request on top of it, refusals included.
    writer = TelemetryWriter(any_workspace)
    new = records("new-", 8, start + 2)
    for i, record in enumerate(new):
        record.request_rows = 8 if i == 0 else 0
    writer.submit_many(new)
    writer.count_refusal("v1", "malformed_body", at=start + 3)
    assert writer.flush(30)
    both = telemetry_queries.window_percentiles(store, start, start + 60)
    assert (both["count"], both["rows"]) == (31, 38)
    assert telemetry_queries.refusal_series(store, start, start + 60)["count"].tolist() == [1]
    dispose_stores()
    open_store(any_workspace)  # a second start finds nothing left to migrate


def test_a_schema_2_workspace_gains_the_deployment_columns_and_keeps_its_rows(any_workspace):
    from opscore.serving.telemetry_writer import PredictionRecord, TelemetryWriter

    writer = TelemetryWriter(any_workspace)
    writer.submit_many([PredictionRecord(f"old-{i}", time.time(), "v1", "api", 4.0, "ok", {"age": 40}, 1, 0.5)
                        for i in range(5)])
    assert writer.flush(30)
    with open_store(any_workspace).write() as conn:
        conn.execute(text("ALTER TABLE predictions DROP COLUMN deployment_id"))
        conn.execute(text("ALTER TABLE predictions DROP COLUMN role"))
        conn.execute(update(schema_info).values(value="2"))
    dispose_stores()

    store = open_store(any_workspace)
    with store.read() as conn:
        version = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "schema_version")).scalar()
        rows = conn.execute(text("SELECT request_id, deployment_id, role FROM predictions ORDER BY request_id")).all()
    assert int(version) == SCHEMA_VERSION
    assert [tuple(r) for r in rows] == [(f"old-{i}", None, None) for i in range(5)]
    writer = TelemetryWriter(any_workspace)
    writer.submit(PredictionRecord("new", time.time(), "v2", "api", 4.0, "ok", {"age": 40}, 1, 0.5,
                                   deployment_id="d-1", role="candidate"))
    assert writer.flush(30)
    with store.read() as conn:
        assert tuple(conn.execute(text("SELECT deployment_id, role FROM predictions WHERE request_id = 'new'")).one()) \
            == ("d-1", "candidate")
