"""Every prediction, its latency and its eventual label: logged without slowing a request, queried cheaply.

A request only appends a :class:`PredictionRecord` to a bounded buffer; a background thread writes
batches of them into ``predictions`` and, in the same transaction, folds their latencies into
``latency_rollups`` (one row per minute, version and source holding a sparse histogram over fine
log-spaced buckets). Percentile charts read the rollups, so "p95 per minute over the last day" costs
the same at a thousand predictions or a million; ``exact_percentiles`` reads the raw rows when the
exact figure matters more than the cost.
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

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, delete, select, text, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as DuplicateRowError

from opscore.config import Settings
from opscore.exceptions import BadInputError, StoreUnavailable
from opscore.store import Store, latency_rollups, open_store, predictions

log = logging.getLogger(__name__)

# Bucket i holds latencies in [edges[i], edges[i+1]); 4 % wide, 0.05 ms to 120 s. Anything faster
# than the first edge counts in bucket 0 and anything slower than the last in the last bucket.
_GROWTH = 1.04
_LOW_MS, _HIGH_MS = 0.05, 120_000.0
LATENCY_BUCKETS_MS: np.ndarray = _LOW_MS * _GROWTH ** np.arange(
    math.ceil(math.log(_HIGH_MS / _LOW_MS) / math.log(_GROWTH)) + 1
)
N_BUCKETS = len(LATENCY_BUCKETS_MS) - 1
_EDGES = LATENCY_BUCKETS_MS.tolist()
QUANTILES = (0.5, 0.95, 0.99)

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


@dataclass(frozen=True)
class FeedbackResult:
    joined: int
    unknown: list[str]


def bucket_index(latency_ms: float) -> int:
    """The histogram bucket a latency falls in."""
    return min(max(bisect_right(_EDGES, latency_ms) - 1, 0), N_BUCKETS - 1)


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
    edges, last_bucket, isfinite = _EDGES, N_BUCKETS - 1, math.isfinite  # locals: this loop is the hot path
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


# -- feedback and retention ---------------------------------------------------------------------
def record_feedback(store: Store, items: list[dict[str, Any]]) -> FeedbackResult:
    """Join ground-truth labels to logged predictions by request id; unknown ids are returned, not raised."""
    cleaned: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadInputError(f"feedback item {i}: expected an object with request_id and label")
        request_id, label = item.get("request_id"), item.get("label")
        if not isinstance(request_id, str) or not request_id:
            raise BadInputError(f"feedback item {i}: request_id must be a non-empty string")
        if label is None:
            raise BadInputError(f"feedback item {i} ({request_id}): label is required")
        try:
            cleaned[request_id] = json.dumps(label, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"feedback item {i} ({request_id}): label is not a JSON value ({exc})") from exc
    if not cleaned:
        return FeedbackResult(0, [])
    ids = list(cleaned)
    now = time.time()
    with store.write() as conn:
        known: set[str] = set()
        for i in range(0, len(ids), 500):
            known.update(conn.execute(
                select(predictions.c.request_id).where(predictions.c.request_id.in_(ids[i:i + 500]))
            ).scalars())
        if known:
            conn.execute(
                update(predictions).where(predictions.c.request_id == bindparam("joined_id"))
                .values(label=bindparam("joined_label"), labelled_at=now),
                [{"joined_id": r, "joined_label": cleaned[r]} for r in ids if r in known],
            )
    return FeedbackResult(len(known), [r for r in ids if r not in known])


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


# -- percentiles from rollups -------------------------------------------------------------------
def _order_statistic(counts: np.ndarray, cum: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Estimate the k-th smallest value (0-based) per row: the t-th of the c values in a bucket sits
    (t + 0.5) / c of the way across it, so the estimate is within that bucket's width of the truth."""
    rows = np.arange(counts.shape[0])
    bucket = (cum > k[:, None]).argmax(axis=1)
    in_bucket = counts[rows, bucket]
    before = cum[rows, bucket] - in_bucket
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.clip((k - before + 0.5) / in_bucket, 0.0, 1.0)
    low = LATENCY_BUCKETS_MS[bucket]
    return low + fraction * (LATENCY_BUCKETS_MS[bucket + 1] - low)


def _quantiles_from_counts(counts: np.ndarray, qs: Iterable[float] = QUANTILES) -> np.ndarray:
    """Percentiles (ms) per row of a groups × buckets count matrix.

    Interpolates between estimated order statistics exactly as numpy's default (linear) percentile
    does between the true ones, so the error stays within the width of the buckets involved (4 %).
    """
    counts = np.asarray(counts, dtype=float)
    cum = counts.cumsum(axis=1)
    total = cum[:, -1] if counts.shape[0] else np.zeros(0)
    qs = tuple(qs)
    out = np.full((counts.shape[0], len(qs)), np.nan)
    for j, q in enumerate(qs):
        position = q * np.maximum(total - 1, 0)
        below = np.floor(position)
        above = np.minimum(below + 1, np.maximum(total - 1, 0))
        low, high = _order_statistic(counts, cum, below), _order_statistic(counts, cum, above)
        out[:, j] = np.where(total > 0, low + (position - below) * (high - low), np.nan)
    return out


def _rollup_rows(store: Store, start: float, end: float, version_id: str | None, source: str | None) -> list[Any]:
    query = select(latency_rollups).where(
        latency_rollups.c.minute >= math.floor(start / 60), latency_rollups.c.minute < math.ceil(end / 60)
    )
    if version_id is not None:
        query = query.where(latency_rollups.c.version_id == version_id)
    if source is not None:
        query = query.where(latency_rollups.c.source == source)
    with store.read() as conn:
        return conn.execute(query).all()


_DIGITS_ONLY = bytes(c if 48 <= c <= 57 else 32 for c in range(256))


def _aggregate(rows: list[Any], group_of: list[int], n_groups: int) -> dict[str, np.ndarray]:
    """Sum counts, errors, latency sums and histograms of rollup rows into ``n_groups`` groups."""
    groups = np.asarray(group_of, dtype=np.int64)
    count = np.bincount(groups, weights=[r.count for r in rows], minlength=n_groups)
    errors = np.bincount(groups, weights=[r.errors for r in rows], minlength=n_groups)
    latency_sum = np.bincount(groups, weights=[r.latency_sum_ms for r in rows], minlength=n_groups)
    # A histogram is {"bucket": count, ...} holding non-negative integers only: blanking every other
    # character leaves "bucket count bucket count ...", which numpy parses in one C pass. No Python
    # step per bucket keeps a day of minutes cheap however much traffic filled them.
    texts = [r.histogram for r in rows]
    joined = " ".join(texts).encode().translate(_DIGITS_ONLY)
    numbers = np.fromstring(joined, dtype=np.int64, sep=" ").reshape(-1, 2)
    entries = np.fromiter((t.count(":") for t in texts), np.int64, len(texts))
    flat = np.repeat(groups, entries) * N_BUCKETS + numbers[:, 0]
    histograms = np.bincount(flat, weights=numbers[:, 1], minlength=n_groups * N_BUCKETS)
    return {"count": count, "errors": errors, "latency_sum": latency_sum,
            "histograms": histograms.reshape(n_groups, N_BUCKETS)}


def _summary_frame(agg: dict[str, np.ndarray]) -> pd.DataFrame:
    count = agg["count"]
    quantiles = _quantiles_from_counts(agg["histograms"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "count": count.astype(np.int64),
            "errors": agg["errors"].astype(np.int64),
            "error_rate": np.where(count > 0, agg["errors"] / count, np.nan),
            "mean_ms": np.where(count > 0, agg["latency_sum"] / count, np.nan),
            "p50_ms": quantiles[:, 0],
            "p95_ms": quantiles[:, 1],
            "p99_ms": quantiles[:, 2],
        })


_SERIES_COLUMNS = ["bucket_start", "version_id", "count", "errors", "error_rate", "rps",
                   "mean_ms", "p50_ms", "p95_ms", "p99_ms"]


def _series(store: Store, start: float, end: float, version_id: str | None, source: str | None,
            step_seconds: int, by_version: bool) -> pd.DataFrame:
    if step_seconds < 60 or step_seconds % 60:
        raise BadInputError(f"step must be a whole number of minutes, not {step_seconds} s")
    rows = _rollup_rows(store, start, end, version_id, source)
    keys: dict[tuple[int, str | None], int] = {}
    group_of = []
    for row in rows:
        key = ((row.minute * 60) // step_seconds * step_seconds, row.version_id if by_version else None)
        group_of.append(keys.setdefault(key, len(keys)))
    frame = _summary_frame(_aggregate(rows, group_of, len(keys)))
    frame.insert(0, "bucket_start", [k[0] for k in keys])
    frame.insert(1, "version_id", [k[1] for k in keys])
    frame["rps"] = frame["count"] / step_seconds
    if not by_version:
        return frame[_SERIES_COLUMNS].drop(columns="version_id").sort_values("bucket_start", ignore_index=True)
    return frame[_SERIES_COLUMNS].sort_values(["bucket_start", "version_id"], ignore_index=True)


def latency_series(store: Store, start: float, end: float, *, version_id: str | None = None,
                   source: str | None = None, step_seconds: int = 60) -> pd.DataFrame:
    """Per step and version: traffic, errors and histogram-estimated latency percentiles, from rollups only."""
    return _series(store, start, end, version_id, source, step_seconds, by_version=True)


def p95_per_minute(store: Store, start: float, end: float) -> pd.DataFrame:
    """p95 latency of all traffic per minute (columns bucket_start, count, p95_ms), from rollups only."""
    frame = _series(store, start, end, None, None, 60, by_version=False)
    return frame[["bucket_start", "count", "p95_ms"]]


def _window_dict(count: int, errors: int, values: tuple[float, ...] | None, mean: float | None) -> dict[str, Any]:
    p50, p95, p99 = values if values is not None else (None, None, None)
    return {"count": count, "errors": errors, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "mean_ms": mean}


def window_percentiles(store: Store, start: float, end: float, *, version_id: str | None = None,
                       source: str | None = None) -> dict[str, Any]:
    """Count, errors and estimated p50/p95/p99/mean over a window (whole minutes), from rollups."""
    rows = _rollup_rows(store, start, end, version_id, source)
    agg = _aggregate(rows, [0] * len(rows), 1)
    count = int(agg["count"][0])
    if count == 0:
        return _window_dict(0, 0, None, None)
    values = tuple(float(v) for v in _quantiles_from_counts(agg["histograms"])[0])
    return _window_dict(count, int(agg["errors"][0]), values, float(agg["latency_sum"][0] / count))


def exact_percentiles(store: Store, start: float, end: float, *, version_id: str | None = None,
                      source: str | None = None) -> dict[str, Any]:
    """The same figures as :func:`window_percentiles`, computed exactly from the raw rows in [start, end)."""
    query = select(predictions.c.latency_ms, predictions.c.status).where(predictions.c.at >= start, predictions.c.at < end)
    if version_id is not None:
        query = query.where(predictions.c.version_id == version_id)
    if source is not None:
        query = query.where(predictions.c.source == source)
    with store.read() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return _window_dict(0, 0, None, None)
    latencies = np.fromiter((r.latency_ms for r in rows), float, len(rows))
    errors = sum(r.status != "ok" for r in rows)
    values = tuple(float(v) for v in np.percentile(latencies, [q * 100 for q in QUANTILES]))
    return _window_dict(len(rows), errors, values, float(latencies.mean()))


def version_latency_summary(store: Store) -> pd.DataFrame:
    """Per version over all rollups: count, errors, error rate, p95, first and last minute with traffic."""
    with store.read() as conn:
        rows = conn.execute(select(latency_rollups)).all()
    versions: dict[str, int] = {}
    group_of = [versions.setdefault(row.version_id, len(versions)) for row in rows]
    frame = _summary_frame(_aggregate(rows, group_of, len(versions)))
    first = np.full(len(versions), np.inf)
    last = np.full(len(versions), -np.inf)
    for row, group in zip(rows, group_of, strict=True):
        first[group] = min(first[group], row.minute * 60)
        last[group] = max(last[group], row.minute * 60 + 60)
    frame.insert(0, "version_id", list(versions))
    frame["first_at"] = first
    frame["last_at"] = last
    return frame[["version_id", "count", "errors", "error_rate", "p95_ms", "first_at", "last_at"]].sort_values(
        "first_at", ignore_index=True)


# -- raw-row views ------------------------------------------------------------------------------
def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def live_window(store: Store, n: int) -> dict[str, Any]:
    """The last ``n`` predictions: count, mean and p95 latency, rate per second, error rate, versions."""
    query = (select(predictions.c.at, predictions.c.latency_ms, predictions.c.status, predictions.c.version_id)
             .order_by(predictions.c.at.desc()).limit(max(0, int(n))))
    with store.read() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return {"count": 0, "avg_latency_ms": None, "p95_ms": None, "rate_per_s": None, "error_rate": None,
                "versions": {}}
    latencies = np.fromiter((r.latency_ms for r in rows), float, len(rows))
    span = rows[0].at - rows[-1].at
    versions: dict[str, int] = {}
    for r in rows:
        versions[r.version_id] = versions.get(r.version_id, 0) + 1
    return {
        "count": len(rows),
        "avg_latency_ms": float(latencies.mean()),
        "p95_ms": float(np.percentile(latencies, 95)),
        "rate_per_s": (len(rows) - 1) / span if span > 0 else None,
        "error_rate": sum(r.status != "ok" for r in rows) / len(rows),
        "versions": versions,
    }


_RECENT_COLUMNS = ["id", "at", "request_id", "version_id", "source", "latency_ms", "status", "prediction",
                   "probability", "label"]


def recent_predictions(store: Store, limit: int = 50, *, since_id: int | None = None) -> pd.DataFrame:
    """The newest logged predictions first; ``since_id`` keeps only rows newer than one already shown."""
    query = select(*(predictions.c[name] for name in _RECENT_COLUMNS)).order_by(predictions.c.id.desc()).limit(limit)
    if since_id is not None:
        query = query.where(predictions.c.id > since_id)
    with store.read() as conn:
        rows = conn.execute(query).all()
    decoded = [(*r[:7], _loads(r.prediction), r.probability, _loads(r.label)) for r in rows]
    return pd.DataFrame(decoded, columns=_RECENT_COLUMNS)


def labelled_predictions(store: Store, start: float | None = None, end: float | None = None,
                         version_id: str | None = None) -> pd.DataFrame:
    """Labelled traffic as a table for retraining: request_id, at, version_id, each feature, prediction, label."""
    query = (select(predictions.c.request_id, predictions.c.at, predictions.c.version_id, predictions.c.features,
                    predictions.c.prediction, predictions.c.label)
             .where(predictions.c.label.is_not(None), predictions.c.status == "ok").order_by(predictions.c.at))
    if start is not None:
        query = query.where(predictions.c.at >= start)
    if end is not None:
        query = query.where(predictions.c.at < end)
    if version_id is not None:
        query = query.where(predictions.c.version_id == version_id)
    with store.read() as conn:
        rows = conn.execute(query).all()
    features = pd.DataFrame.from_records([json.loads(r.features) for r in rows])
    meta = pd.DataFrame({
        "request_id": [r.request_id for r in rows],
        "at": [r.at for r in rows],
        "version_id": [r.version_id for r in rows],
    })
    outcome = pd.DataFrame({
        "prediction": [_loads(r.prediction) for r in rows],
        "label": [_loads(r.label) for r in rows],
    })
    features = features.drop(columns=[c for c in features.columns if c in {*meta.columns, *outcome.columns}])
    return pd.concat([meta, features, outcome], axis=1)
