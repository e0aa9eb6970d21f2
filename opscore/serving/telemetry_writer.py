"""Every prediction and its latency, logged without slowing a request.

A request only appends a :class:`PredictionRecord` per row to a bounded buffer; a background thread
writes batches of them into ``predictions`` and, in the same transaction, folds them into the rollup
tables: ``latency_rollups`` (per minute, version and source: requests, failed requests, a sparse
histogram of request latencies over the buckets of :mod:`opscore.serving.latency_histogram`, and the
rows those requests carried), ``refusals`` (requests refused before any prediction, by reason,
counted by :meth:`TelemetryWriter.count_refusal`, with their invalid cells by column and reason in
``rejected_cells``) and, unless ``feature_rollups`` is off, the per-feature and multivariate rollups
of :mod:`opscore.serving.feature_rollups`. Queries live in :mod:`opscore.serving.telemetry_queries`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select, text
from sqlalchemy import insert as sql_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as DuplicateRowError

from opscore.config import Settings
from opscore.exceptions import BadInputError, StoreUnavailable
from opscore.serving import feature_rollups
from opscore.serving.feature_rollups import FeatureDeltas, Planner
from opscore.serving.latency_histogram import EDGES, N_BUCKETS
from opscore.store import (
    Store,
    estimate_rollups,
    latency_rollups,
    multivariate_rollups,
    open_store,
    predictions,
    refusals,
    rejected_cells,
)
from opscore.store import feature_rollups as feature_rollups_table

log = logging.getLogger(__name__)

# Why a request was refused before any prediction: the reasons kept in the refusals table and used
# as the label of opscore_requests_refused_total, each with what it covers.
MALFORMED_BODY, INVALID_ROWS, TOO_LARGE = "malformed_body", "invalid_rows", "too_large"
REFUSAL_REASONS = {
    MALFORMED_BODY: "malformed body (not JSON, wrong shape, empty)",
    INVALID_ROWS: "invalid rows (missing columns, bad cells)",
    TOO_LARGE: "too large (bytes or rows over the limit)",
}

# Why a row's cell was refused, from the validator's message: the reasons kept in rejected_cells.
_CELL_REASONS = (
    ("missing column", "missing_column"),
    ("expected a finite number", "not_finite"),
    ("expected a number", "not_a_number"),
    ("expected a category", "not_a_category"),
    ("expected an object", "not_an_object"),
)


def rejected_cells_of(problems: Iterable[Any]) -> dict[tuple[str, str], int]:
    """Invalid rows counted by (column, reason); a problem with no column counts under "(row)"."""
    cells: dict[tuple[str, str], int] = {}
    seen: set[tuple[Any, str, str]] = set()
    for problem in problems:
        reason = next((code for prefix, code in _CELL_REASONS if problem.message.startswith(prefix)), "other")
        key = (problem.column if problem.column is not None else "(row)", reason)
        if (problem.row, *key) not in seen:
            seen.add((problem.row, *key))
            cells[key] = cells.get(key, 0) + 1
    return cells


_MAX_BACKOFF_SECONDS = 2.0
_RETENTION_CHUNK = 20_000
# Serializes rollup merges between writers in different processes on PostgreSQL.
_ROLLUP_LOCK_KEY = 7270012


@dataclass(slots=True)
class PredictionRecord:
    """One logged prediction (or failed model call) as the telemetry store keeps it."""

    request_id: str
    at: float
    version_id: str
    source: str  # api | batch | dashboard | shadow
    latency_ms: float
    status: str  # ok | error
    features: dict
    prediction: Any
    probability: float | None
    error: str | None = None
    # Rows of the request this record opens; 0 for a request's later rows. The request's latency is
    # counted once, with its opening row, so a 64-row request is one request of 64 rows.
    request_rows: int = 1
    # The deployment that routed the request and the role of the version that answered it.
    deployment_id: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class WriterStats:
    """What the writer has done so far; ``backlog`` is accepted but not yet in the store."""

    submitted: int
    written: int
    dropped: int
    backlog: int
    failures: int
    last_error: str | None
    # Refused by the store (request id already logged, or a malformed record); not retried.
    rejected: int = 0


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays reach here from model outputs; anything else is kept as its text.
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# Compact, and without the circular-reference bookkeeping (records hold plain JSON-like values):
# about twice as fast as json.dumps, which matters at tens of thousands of records a second.
_encode = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode


def _dumps(value: Any) -> str:
    if type(value) is int:  # class labels, the common case: ten times cheaper than the encoder
        return str(value)
    try:
        return _encode(value)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(value, default=_json_default)


class TelemetryWriter:
    """Logs predictions in the background; ``submit`` never waits for the store.

    Records wait in a bounded buffer (``settings.telemetry_buffer``). A thread writes batches of up
    to ``settings.telemetry_batch`` every ``settings.telemetry_flush_seconds`` (sooner when a batch
    is full). When the store fails, the batch is kept and retried with backoff; a record is lost only
    when the buffer is full at the time it is submitted, and then it is counted in ``dropped``.
    """

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self._store = store or open_store(settings)
        self._capacity = max(1, settings.telemetry_buffer)
        self._batch_size = max(1, settings.telemetry_batch)
        self._interval = max(0.01, settings.telemetry_flush_seconds)
        self._buffer: deque[PredictionRecord] = deque()
        self._inflight: list[PredictionRecord] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._settled = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self._submitted = self._written = self._dropped = self._rejected = self._failures = 0
        self._closed = False
        self._last_error: str | None = None
        self._upserts = _rollup_upserts(self._store)
        # Refusals are counts, not records: they wait here (bounded by minutes x reasons) and are
        # written with the next batch, so a flood of bad requests can neither fill the buffer nor be lost.
        self._refusals: dict[_RefusalKey, int] = {}
        self._inflight_refusals: dict[_RefusalKey, int] = {}
        self._refusals_counted = self._refusals_written = 0
        self._rejected_cells: dict[_RejectedKey, int] = {}
        self._inflight_cells: dict[_RejectedKey, int] = {}
        self._planner = Planner(settings.model_store_path) if settings.feature_rollups else None
        self._retention_days = settings.retention_days
        self._rollup_retention_days = settings.rollup_retention_days
        self._retention_every = settings.retention_check_seconds
        self._next_retention = time.monotonic()
        self.retention_removed = 0

    # -- the request side -------------------------------------------------------------------
    def start(self) -> TelemetryWriter:
        """Start the background thread (idempotent); returns the writer for chaining."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._closing.clear()
                self._abandon.clear()
                self._closed = False
                self._thread = threading.Thread(target=self._run, name="opscore-telemetry", daemon=True)
                self._thread.start()
        return self

    def submit(self, record: PredictionRecord) -> bool:
        """Queue one record; False (and counted as dropped) when the buffer is full or the writer closed."""
        with self._lock:
            if self._closed or len(self._buffer) >= self._capacity:
                self._dropped += 1
                return False
            self._buffer.append(record)
            self._submitted += 1
            full = len(self._buffer) >= self._batch_size
        if full:
            self._wake.set()
        return True

    def submit_many(self, records: Iterable[PredictionRecord]) -> int:
        """Queue records; returns how many were accepted (the rest are counted as dropped)."""
        records = list(records)
        with self._lock:
            room = 0 if self._closed else max(0, self._capacity - len(self._buffer))
            accepted = records[:room]
            self._buffer.extend(accepted)
            self._submitted += len(accepted)
            self._dropped += len(records) - len(accepted)
            full = len(self._buffer) >= self._batch_size
        if full:
            self._wake.set()
        return len(accepted)

    def count_refusal(self, version_id: str, reason: str, *, source: str = "api", at: float | None = None,
                      cells: dict[tuple[str, str], int] | None = None) -> None:
        """Count one request refused before any prediction (a 4xx); written with the next batch.

        ``cells`` counts the request's invalid rows by (column, reason), for data quality.
        """
        minute = int((time.time() if at is None else at) // 60)
        key = (minute, version_id, source, reason)
        with self._lock:
            self._refusals[key] = self._refusals.get(key, 0) + 1
            self._refusals_counted += 1
            for (column, why), count in (cells or {}).items():
                cell_key = (minute, version_id, source, column, why)
                self._rejected_cells[cell_key] = self._rejected_cells.get(cell_key, 0) + count

    @property
    def stats(self) -> WriterStats:
        with self._lock:
            backlog = len(self._buffer) + len(self._inflight)
            return WriterStats(self._submitted, self._written, self._dropped, backlog, self._failures,
                               self._last_error, self._rejected)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is in the store; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target, refused = self._submitted, self._refusals_counted
        if self._thread is None or not self._thread.is_alive():
            return self._drain_here(deadline, target, refused)
        self._wake.set()
        with self._settled:
            while self._written + self._rejected < target or self._refusals_written < refused:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._settled.wait(min(remaining, 0.1))
                self._wake.set()
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is left and stop the thread; False if records were still unwritten at ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True  # from here on submissions are refused and counted, never stranded
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._closing.set()
            self._wake.set()
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self._abandon.set()
                thread.join(1.0)
        else:
            with self._lock:
                target, refused = self._submitted, self._refusals_counted
            self._drain_here(deadline, target, refused)
        unwritten = self.stats.backlog
        if unwritten:
            log.warning("telemetry writer closed with %d record(s) not written: %s", unwritten, self._last_error)
        return unwritten == 0

    # -- the store side ---------------------------------------------------------------------
    def _run(self) -> None:
        failures_in_row = 0
        while True:
            if failures_in_row:
                # Back off from a failing store; only giving up on close interrupts the wait.
                if self._abandon.wait(min(0.05 * 2**failures_in_row, _MAX_BACKOFF_SECONDS)):
                    return
            elif not self._closing.is_set():
                self._wake.wait(self._interval)
                self._wake.clear()
            if self._abandon.is_set():
                return
            if self._write_pending():
                failures_in_row = 0
                if self._closing.is_set() and self._settled_all():
                    return
                self._enforce_retention_when_due()
            else:
                failures_in_row += 1

    def _settled_all(self) -> bool:
        """Nothing left to write: no records, no refusal counts."""
        with self._lock:
            return not (self._buffer or self._inflight or self._refusals or self._inflight_refusals
                        or self._rejected_cells or self._inflight_cells)

    def _enforce_retention_when_due(self) -> None:
        """Every ``retention_check_seconds``: remove raw rows past ``retention_days`` and rollup rows
        past ``rollup_retention_days`` (zero keeps either)."""
        if time.monotonic() < self._next_retention:
            return
        if self._retention_days <= 0 and self._rollup_retention_days <= 0:
            return
        self._next_retention = time.monotonic() + self._retention_every
        try:
            if self._retention_days > 0:
                self.retention_removed += apply_retention(self._store, self._retention_days)
            if self._rollup_retention_days > 0:
                apply_rollup_retention(self._store, self._rollup_retention_days)
        except Exception as exc:  # noqa: BLE001 - retention can wait for the next round; logging must go on
            self._note_failure(exc)

    def _drain_here(self, deadline: float, target: int, refused: int = 0) -> bool:
        """Write from the calling thread (the writer was never started or has stopped)."""
        attempt = 0
        while self._written + self._rejected < target or self._refusals_written < refused:
            if self._write_pending():
                continue
            attempt += 1
            if time.monotonic() + 0.05 * 2**attempt > deadline:
                return False
            time.sleep(min(0.05 * 2**attempt, _MAX_BACKOFF_SECONDS))
        return True

    def _write_pending(self) -> bool:
        """Write batches until the buffer is empty; False when the store failed (the batch is kept)."""
        with self._write_lock:
            while True:
                with self._lock:
                    if not self._inflight:
                        take = min(self._batch_size, len(self._buffer))
                        self._inflight = [self._buffer.popleft() for _ in range(take)]
                    if not self._inflight_refusals and not self._inflight_cells:
                        self._inflight_refusals, self._refusals = self._refusals, {}
                        self._inflight_cells, self._rejected_cells = self._rejected_cells, {}
                    if not self._inflight and not self._inflight_refusals and not self._inflight_cells:
                        return True
                    batch, refused, cells = self._inflight, self._inflight_refusals, self._inflight_cells
                try:
                    written, rejected = self._write_batch(batch, refused, cells)
                except (StoreUnavailable, DBAPIError) as exc:
                    self._note_failure(exc)
                    return False
                except Exception as exc:  # noqa: BLE001 - a bug must not kill logging; keep the batch, report it
                    log.exception("telemetry batch failed")
                    self._note_failure(exc)
                    return False
                with self._lock:
                    self._inflight = []
                    self._inflight_refusals = {}
                    self._inflight_cells = {}
                    self._written += written
                    self._rejected += rejected
                    self._refusals_written += sum(refused.values())
                with self._settled:
                    self._settled.notify_all()

    def _note_failure(self, exc: Exception) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    def _deltas(self, batch: list[PredictionRecord], refused: dict[_RefusalKey, int],
                cells: dict[_RejectedKey, int]) -> tuple[list[dict[str, Any]], RollupDeltas]:
        rows, deltas = _rows_and_rollups(batch)
        deltas.refusals = dict(refused)
        deltas.rejected_cells = dict(cells)
        if self._planner is not None:
            # A shadow copy carries the features of the production row it copies: counting them twice
            # would only double the cost (the shadow report compares the answers row by row).
            deltas.features = self._planner.deltas([r for r in batch if r.source != "shadow"])
        return rows, deltas

    def _write_batch(self, batch: list[PredictionRecord], refused: dict[_RefusalKey, int],
                     cells: dict[_RejectedKey, int]) -> tuple[int, int]:
        """Write one batch, its rollups and the refusals counted meanwhile in one transaction;
        returns (written, rejected)."""
        rows, deltas = self._deltas(batch, refused, cells)
        try:
            with self._store.write() as conn:
                if rows:
                    conn.execute(sql_insert(predictions), rows)
                _merge_rollups(self._store, conn, self._upserts, deltas)
            return len(rows), 0
        except DuplicateRowError:
            pass
        # The store refused some row: a request id already logged (a retry after a commit whose
        # answer was lost, or a caller reusing an id) or a malformed record. Write row by row so one
        # bad record cannot hold back the others; rollups count only the rows that went in.
        accepted: list[PredictionRecord] = []
        refusals: list[str] = []
        with self._store.write() as conn:
            for record, row in zip(batch, rows, strict=True):
                try:
                    with conn.begin_nested():
                        conn.execute(sql_insert(predictions), row)
                    accepted.append(record)
                except DuplicateRowError as exc:
                    refusals.append(f"{record.request_id}: {str(exc.orig).splitlines()[0]}")
            deltas = self._deltas(accepted, refused, cells)[1]
            _merge_rollups(self._store, conn, self._upserts, deltas)
        if refusals:
            with self._lock:
                self._last_error = f"{len(refusals)} record(s) refused by the store, e.g. {refusals[0]}"
            log.warning("telemetry: %s", self._last_error)
        return len(accepted), len(refusals)


_RollupKey = tuple[int, str, str]  # minute, version, source
_RefusalKey = tuple[int, str, str, str]  # minute, version, source, reason
_RejectedKey = tuple[int, str, str, str, str]  # minute, version, source, column, reason
# Per rollup key: [requests, failed requests, latency sum, {bucket: requests}, rows, failed rows]
_REQUESTS, _FAILED, _LATENCY_SUM, _HISTOGRAM, _ROWS, _FAILED_ROWS = range(6)


@dataclass
class RollupDeltas:
    """What one write adds to the rollup tables, merged in the same transaction as its rows.

    Another rollup (say per-feature statistics) is one more field here, filled in
    :func:`_rows_and_rollups` (or by the writer, like ``refusals``) and merged in :func:`_merge_rollups`.
    """

    latency: dict[_RollupKey, list[Any]] = field(default_factory=dict)
    refusals: dict[_RefusalKey, int] = field(default_factory=dict)
    rejected_cells: dict[_RejectedKey, int] = field(default_factory=dict)
    features: FeatureDeltas = field(default_factory=FeatureDeltas)


def _rows_and_rollups(batch: list[PredictionRecord]) -> tuple[list[dict[str, Any]], RollupDeltas]:
    """Insert parameters for ``predictions`` and the rollup deltas they make, in one pass."""
    rows = []
    rollups: dict[_RollupKey, list[Any]] = {}
    edges, last_bucket, isfinite = EDGES, N_BUCKETS - 1, math.isfinite  # locals: this loop is the hot path
    for r in batch:
        # A NaN latency would poison its rollup row's sum for good; a broken clock reads as 0 ms.
        latency = r.latency_ms if isfinite(r.latency_ms) and r.latency_ms >= 0 else 0.0
        failed = r.status != "ok"
        rows.append({
            "request_id": r.request_id, "at": r.at, "version_id": r.version_id, "source": r.source,
            "latency_ms": latency, "status": r.status, "features": _dumps(r.features),
            "prediction": None if r.prediction is None else _dumps(r.prediction),
            "probability": r.probability, "error": r.error, "request_rows": r.request_rows,
            "deployment_id": r.deployment_id, "role": r.role,
        })
        key = (int(r.at // 60), r.version_id, r.source)
        entry = rollups.get(key)
        if entry is None:
            entry = rollups[key] = [0, 0, 0.0, {}, 0, 0]
        entry[_ROWS] += 1
        entry[_FAILED_ROWS] += failed
        if r.request_rows:  # the request's opening row carries its latency, once
            entry[_REQUESTS] += 1
            entry[_FAILED] += failed
            entry[_LATENCY_SUM] += latency
            histogram = entry[_HISTOGRAM]
            b = min(max(bisect_right(edges, latency) - 1, 0), last_bucket)
            histogram[b] = histogram.get(b, 0) + 1
    return rows, RollupDeltas(latency=rollups)


def _rollup_upserts(store: Store) -> dict[str, Any]:
    """The upsert statement of each rollup table, built once per writer."""
    dialect = sqlite if store.is_sqlite else postgresql
    latency = dialect.insert(latency_rollups)
    refused = dialect.insert(refusals)
    cells = dialect.insert(rejected_cells)
    return {
        **feature_rollups.upserts(dialect),
        "rejected_cells": cells.on_conflict_do_update(
            index_elements=["minute", "version_id", "source", "column_name", "reason"],
            set_={"count": rejected_cells.c.count + cells.excluded["count"]},
        ),
        # Latency rows are merged in Python first (the histogram is JSON), then written whole.
        "latency": latency.on_conflict_do_update(
            index_elements=["minute", "version_id", "source"],
            set_={name: latency.excluded[name]
                  for name in ("count", "errors", "latency_sum_ms", "histogram", "row_count", "row_errors")},
        ),
        # Plain counts add up in SQL.
        "refusals": refused.on_conflict_do_update(
            index_elements=["minute", "version_id", "source", "reason"],
            set_={"count": refusals.c.count + refused.excluded["count"]},
        ),
    }


def _merge_rollups(store: Store, conn: Connection, upserts: dict[str, Any], deltas: RollupDeltas) -> None:
    """Add ``deltas`` to the stored rollup rows inside the caller's write transaction."""
    if not deltas.latency and not deltas.refusals and not deltas.rejected_cells and not deltas.features:
        return
    if not store.is_sqlite:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROLLUP_LOCK_KEY})
    _merge_latency(conn, upserts["latency"], deltas.latency)
    if deltas.refusals:
        conn.execute(upserts["refusals"], [
            {"minute": minute, "version_id": version, "source": source, "reason": reason, "count": count}
            for (minute, version, source, reason), count in sorted(deltas.refusals.items())
        ])
    if deltas.rejected_cells:
        conn.execute(upserts["rejected_cells"], [
            {"minute": minute, "version_id": version, "source": source, "column_name": column, "reason": reason,
             "count": count}
            for (minute, version, source, column, reason), count in sorted(deltas.rejected_cells.items())
        ])
    if deltas.features:
        feature_rollups.merge(conn, upserts, deltas.features)


def _merge_latency(conn: Connection, upsert: Any, deltas: dict[_RollupKey, list[Any]]) -> None:
    if not deltas:
        return
    minutes = sorted({key[0] for key in deltas})
    existing = conn.execute(select(latency_rollups).where(latency_rollups.c.minute.in_(minutes)))
    for row in existing:
        entry = deltas.get((row.minute, row.version_id, row.source))
        if entry is None:
            continue
        entry[_REQUESTS] += row.count
        entry[_FAILED] += row.errors
        entry[_LATENCY_SUM] += row.latency_sum_ms
        entry[_ROWS] += row.row_count
        entry[_FAILED_ROWS] += row.row_errors
        histogram = entry[_HISTOGRAM]
        for bucket, count in json.loads(row.histogram).items():
            histogram[int(bucket)] = histogram.get(int(bucket), 0) + count
    conn.execute(upsert, [
        {"minute": minute, "version_id": version, "source": source, "count": requests, "errors": failed,
         "latency_sum_ms": latency_sum, "histogram": json.dumps({str(b): histogram[b] for b in sorted(histogram)}),
         "row_count": rows, "row_errors": failed_rows}
        for (minute, version, source), (requests, failed, latency_sum, histogram, rows, failed_rows) in deltas.items()
    ])


def apply_retention(store: Store, older_than_days: float) -> int:
    """Delete raw predictions older than ``older_than_days``; rollups stay (until ``rollup_retention_days``),
    so latency history outlives the raw rows."""
    if not older_than_days >= 0:
        raise BadInputError(f"retention must be zero or more days, not {older_than_days!r}")
    cutoff = time.time() - older_than_days * 86_400
    removed = 0
    while True:
        # Small transactions, so the telemetry writer is never locked out for long.
        with store.write() as conn:
            doomed = select(predictions.c.id).where(predictions.c.at < cutoff).limit(_RETENTION_CHUNK)
            count = conn.execute(delete(predictions).where(predictions.c.id.in_(doomed))).rowcount
        removed += count
        if count < _RETENTION_CHUNK:
            return removed


def apply_rollup_retention(store: Store, older_than_days: float) -> int:
    """Delete rollup rows (latency, refusals, rejected cells, feature and multivariate rollups) older
    than ``older_than_days``; returns how many."""
    if not older_than_days >= 0:
        raise BadInputError(f"rollup retention must be zero or more days, not {older_than_days!r}")
    cutoff = time.time() - older_than_days * 86_400
    cutoff_minute = math.floor(cutoff / 60)
    removed = 0
    with store.write() as conn:
        for table in (latency_rollups, refusals, rejected_cells):
            removed += conn.execute(delete(table).where(table.c.minute < cutoff_minute)).rowcount
        for table in (feature_rollups_table, multivariate_rollups, estimate_rollups):
            removed += conn.execute(delete(table).where(table.c.bucket < cutoff)).rowcount
    return removed
