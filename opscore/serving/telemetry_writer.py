"""Every prediction and its latency, logged without slowing a request.

A request only appends a :class:`PredictionRecord` to a bounded buffer; a background thread writes
batches of them into ``predictions`` and, in the same transaction, folds their latencies into
``latency_rollups`` (one row per minute, version and source holding a sparse histogram over the
buckets of :mod:`opscore.serving.latency_histogram`). Queries live in :mod:`opscore.serving.telemetry_queries`.
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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, text
from sqlalchemy import insert as sql_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as DuplicateRowError

from opscore.config import Settings
from opscore.exceptions import BadInputError, StoreUnavailable
from opscore.serving.latency_histogram import EDGES, N_BUCKETS
from opscore.store import Store, latency_rollups, open_store, predictions

log = logging.getLogger(__name__)

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
    source: str  # api | batch | dashboard | demo | shadow
    latency_ms: float
    status: str  # ok | error
    features: dict
    prediction: Any
    probability: float | None
    error: str | None = None


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
        self._upsert = _rollup_upsert(self._store)
        self._retention_days = settings.retention_days
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
            target = self._submitted
        if self._thread is None or not self._thread.is_alive():
            return self._drain_here(deadline, target)
        self._wake.set()
        with self._settled:
            while self._written + self._rejected < target:
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
                target = self._submitted
            self._drain_here(deadline, target)
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
                if self._closing.is_set() and self.stats.backlog == 0:
                    return
                self._enforce_retention_when_due()
            else:
                failures_in_row += 1

    def _enforce_retention_when_due(self) -> None:
        """Remove raw rows past ``retention_days`` every ``retention_check_seconds`` (rollups stay)."""
        if self._retention_days <= 0 or time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + self._retention_every
        try:
            self.retention_removed += apply_retention(self._store, self._retention_days)
        except Exception as exc:  # noqa: BLE001 - retention can wait for the next round; logging must go on
            self._note_failure(exc)

    def _drain_here(self, deadline: float, target: int) -> bool:
        """Write from the calling thread (the writer was never started or has stopped)."""
        attempt = 0
        while self._written + self._rejected < target:
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
                        if take == 0:
                            return True
                        self._inflight = [self._buffer.popleft() for _ in range(take)]
                    batch = self._inflight
                try:
                    written, rejected = self._write_batch(batch)
                except (StoreUnavailable, DBAPIError) as exc:
                    self._note_failure(exc)
                    return False
                except Exception as exc:  # noqa: BLE001 - a bug must not kill logging; keep the batch, report it
                    log.exception("telemetry batch failed")
                    self._note_failure(exc)
                    return False
                with self._lock:
                    self._inflight = []
                    self._written += written
                    self._rejected += rejected
                with self._settled:
                    self._settled.notify_all()

    def _note_failure(self, exc: Exception) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    def _write_batch(self, batch: list[PredictionRecord]) -> tuple[int, int]:
        """Write one batch and its rollups in one transaction; returns (written, rejected)."""
        rows, rollups = _rows_and_rollups(batch)
        try:
            with self._store.write() as conn:
                conn.execute(sql_insert(predictions), rows)
                _merge_rollups(self._store, conn, self._upsert, rollups)
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
            _merge_rollups(self._store, conn, self._upsert, _rows_and_rollups(accepted)[1])
        if refusals:
            with self._lock:
                self._last_error = f"{len(refusals)} record(s) refused by the store, e.g. {refusals[0]}"
            log.warning("telemetry: %s", self._last_error)
        return len(accepted), len(refusals)


_RollupKey = tuple[int, str, str]


def _rows_and_rollups(batch: list[PredictionRecord]) -> tuple[list[dict[str, Any]], dict[_RollupKey, list[Any]]]:
    """Insert parameters for ``predictions`` and per-(minute, version, source) rollup deltas, in one pass."""
    rows = []
    rollups: dict[_RollupKey, list[Any]] = {}
    edges, last_bucket, isfinite = EDGES, N_BUCKETS - 1, math.isfinite  # locals: this loop is the hot path
    for r in batch:
        # A NaN latency would poison its rollup row's sum for good; a broken clock reads as 0 ms.
        latency = r.latency_ms if isfinite(r.latency_ms) and r.latency_ms >= 0 else 0.0
        rows.append({
            "request_id": r.request_id, "at": r.at, "version_id": r.version_id, "source": r.source,
            "latency_ms": latency, "status": r.status, "features": _dumps(r.features),
            "prediction": None if r.prediction is None else _dumps(r.prediction),
            "probability": r.probability, "error": r.error,
        })
        key = (int(r.at // 60), r.version_id, r.source)
        entry = rollups.get(key)
        if entry is None:
            entry = rollups[key] = [0, 0, 0.0, {}]
        entry[0] += 1
        entry[1] += r.status != "ok"
        entry[2] += latency
        histogram = entry[3]
        b = min(max(bisect_right(edges, latency) - 1, 0), last_bucket)
        histogram[b] = histogram.get(b, 0) + 1
    return rows, rollups


def _rollup_upsert(store: Store) -> Any:
    dialect = sqlite if store.is_sqlite else postgresql
    stmt = dialect.insert(latency_rollups)
    return stmt.on_conflict_do_update(
        index_elements=["minute", "version_id", "source"],
        set_={name: stmt.excluded[name] for name in ("count", "errors", "latency_sum_ms", "histogram")},
    )


def _merge_rollups(store: Store, conn: Connection, upsert: Any, deltas: dict[_RollupKey, list[Any]]) -> None:
    """Add ``deltas`` to the stored rollup rows inside the caller's write transaction."""
    if not deltas:
        return
    if not store.is_sqlite:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROLLUP_LOCK_KEY})
    minutes = sorted({key[0] for key in deltas})
    existing = conn.execute(select(latency_rollups).where(latency_rollups.c.minute.in_(minutes)))
    for row in existing:
        entry = deltas.get((row.minute, row.version_id, row.source))
        if entry is None:
            continue
        entry[0] += row.count
        entry[1] += row.errors
        entry[2] += row.latency_sum_ms
        histogram = entry[3]
        for bucket, count in json.loads(row.histogram).items():
            histogram[int(bucket)] = histogram.get(int(bucket), 0) + count
    conn.execute(upsert, [
        {"minute": minute, "version_id": version, "source": source, "count": count, "errors": errors,
         "latency_sum_ms": latency_sum, "histogram": json.dumps({str(b): histogram[b] for b in sorted(histogram)})}
        for (minute, version, source), (count, errors, latency_sum, histogram) in deltas.items()
    ])


def apply_retention(store: Store, older_than_days: float) -> int:
    """Delete raw predictions older than ``older_than_days``; rollups stay, so latency history survives."""
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
