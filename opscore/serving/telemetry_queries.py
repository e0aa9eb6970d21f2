"""Reading telemetry back: latency and traffic over any window from the rollups, and raw-row views.

Percentile charts read the per-minute rollups, so "p95 per minute over the last day" costs the
same at a thousand predictions or a million; ``exact_percentiles`` reads the raw rows when the exact
figure matters more than the cost. Every figure counts requests (one latency per request, however
many rows it carried) and reports rows beside them; every function takes a ``source`` so the
service's traffic (``api``) is never mixed with batch or dashboard scoring unless a caller asks.
No function here reads a table whole: windows are bounded by time, per-version totals are summed
in SQL, and row listings carry a LIMIT.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, select

from opscore.exceptions import BadInputError
from opscore.serving.latency_histogram import (
    QUANTILES,
    aggregate_rollups,
    quantiles_from_counts,
    summary_frame,
)
from opscore.store import Store, latency_rollups, predictions, refusals

# A version's p95 on the Versions page covers its last this-many days with traffic, so the read
# stays bounded however long the version served (its counts cover all its rollups, summed in SQL).
VERSION_P95_DAYS = 7


# What the window queries read of a rollup row (not source or row_errors: fewer columns, faster reads).
_ROLLUP_FIGURES = (latency_rollups.c.minute, latency_rollups.c.version_id, latency_rollups.c.count,
                   latency_rollups.c.errors, latency_rollups.c.latency_sum_ms, latency_rollups.c.histogram,
                   latency_rollups.c.row_count)


def _rollup_rows(store: Store, start: float, end: float, version_id: str | None, source: str | None) -> list[Any]:
    query = select(*_ROLLUP_FIGURES).where(
        latency_rollups.c.minute >= math.floor(start / 60), latency_rollups.c.minute < math.ceil(end / 60)
    )
    if version_id is not None:
        query = query.where(latency_rollups.c.version_id == version_id)
    if source is not None:
        query = query.where(latency_rollups.c.source == source)
    with store.read() as conn:
        return conn.execute(query).all()


_SERIES_COLUMNS = ["bucket_start", "version_id", "count", "errors", "error_rate", "rps",
                   "mean_ms", "p50_ms", "p95_ms", "p99_ms", "rows", "rows_per_s"]


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
    frame = summary_frame(aggregate_rollups(rows, group_of, len(keys)))
    frame.insert(0, "bucket_start", [k[0] for k in keys])
    frame.insert(1, "version_id", [k[1] for k in keys])
    frame["rps"] = frame["count"] / step_seconds
    frame["rows_per_s"] = frame["rows"] / step_seconds
    if not by_version:
        return frame[_SERIES_COLUMNS].drop(columns="version_id").sort_values("bucket_start", ignore_index=True)
    return frame[_SERIES_COLUMNS].sort_values(["bucket_start", "version_id"], ignore_index=True)


def latency_series(store: Store, start: float, end: float, *, version_id: str | None = None,
                   source: str | None = None, step_seconds: int = 60) -> pd.DataFrame:
    """Per step and version: requests (``count``, ``rps``), failed requests, histogram-estimated request
    latency percentiles, and rows (``rows``, ``rows_per_s``), from rollups only."""
    return _series(store, start, end, version_id, source, step_seconds, by_version=True)


def p95_per_minute(store: Store, start: float, end: float, *, source: str | None = None) -> pd.DataFrame:
    """p95 request latency per minute (columns bucket_start, count, p95_ms), from rollups only;
    every source unless ``source`` is given."""
    frame = _series(store, start, end, None, source, 60, by_version=False)
    return frame[["bucket_start", "count", "p95_ms"]]


def _window_dict(count: int, errors: int, values: tuple[float, ...] | None, mean: float | None,
                 rows: int = 0) -> dict[str, Any]:
    p50, p95, p99 = values if values is not None else (None, None, None)
    return {"count": count, "errors": errors, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "mean_ms": mean,
            "rows": rows}


def _figures(agg: dict[str, Any], group: int) -> dict[str, Any]:
    count, row_count = int(agg["count"][group]), int(agg["rows"][group])
    if count == 0:
        return _window_dict(0, 0, None, None, row_count)
    values = tuple(float(v) for v in quantiles_from_counts(agg["histograms"][group:group + 1])[0])
    return _window_dict(count, int(agg["errors"][group]), values, float(agg["latency_sum"][group] / count), row_count)


def window_percentiles(store: Store, start: float, end: float, *, version_id: str | None = None,
                       source: str | None = None) -> dict[str, Any]:
    """Requests (``count``), failed requests, estimated p50/p95/p99/mean request latency and rows over a
    window (whole minutes), from rollups."""
    rows = _rollup_rows(store, start, end, version_id, source)
    return _figures(aggregate_rollups(rows, [0] * len(rows), 1), 0)


def window_percentiles_by_version(store: Store, start: float, end: float, *, version_id: str | None = None,
                                  source: str | None = None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The figures of :func:`window_percentiles` over all versions and per version, from one read."""
    rows = _rollup_rows(store, start, end, version_id, source)
    versions: dict[str, int] = {}
    group_of = [versions.setdefault(row.version_id, len(versions)) for row in rows]
    agg = aggregate_rollups(rows, group_of, len(versions))
    total = {key: values.sum(axis=0, keepdims=True) for key, values in agg.items()}
    return _figures(total, 0), {version: _figures(agg, group) for version, group in sorted(versions.items())}


def exact_percentiles(store: Store, start: float, end: float, *, version_id: str | None = None,
                      source: str | None = None) -> dict[str, Any]:
    """The same figures as :func:`window_percentiles`, computed exactly from the raw rows in [start, end):
    one latency per request, read from the row that opened it."""
    failed = case((predictions.c.status == "ok", 0), else_=1)
    query = (select(predictions.c.latency_ms, failed, predictions.c.request_rows)
             .where(predictions.c.at >= start, predictions.c.at < end, predictions.c.request_rows > 0))
    if version_id is not None:
        query = query.where(predictions.c.version_id == version_id)
    if source is not None:
        query = query.where(predictions.c.source == source)
    with store.read() as conn:
        rows = conn.execute(query).all()
    # Plain numbers only, flattened in one pass: this reads every request in the window.
    data = np.fromiter(chain.from_iterable(rows), float, 3 * len(rows)).reshape(-1, 3)
    if not len(data):
        return _window_dict(0, 0, None, None)
    latencies = data[:, 0]
    values = tuple(float(v) for v in np.percentile(latencies, [q * 100 for q in QUANTILES]))
    return _window_dict(len(data), int(data[:, 1].sum()), values, float(latencies.mean()), int(data[:, 2].sum()))


def first_traffic_at(store: Store, *, source: str | None = None) -> float | None:
    """Start of the first minute with logged traffic (of ``source``), or None before any."""
    query = select(latency_rollups.c.minute).order_by(latency_rollups.c.minute).limit(1)
    if source is not None:
        query = query.where(latency_rollups.c.source == source)
    with store.read() as conn:
        minute = conn.execute(query).scalar()
    return None if minute is None else float(minute * 60)


_SUMMARY_COLUMNS = ["version_id", "count", "errors", "error_rate", "p95_ms", "first_at", "last_at", "rows"]


def version_latency_summary(store: Store, *, source: str | None = None,
                            p95_days: float = VERSION_P95_DAYS) -> pd.DataFrame:
    """Per version: requests, failed requests, error rate and rows over all its rollups (summed in SQL),
    first and last minute with traffic, and p95 request latency over its last ``p95_days`` with traffic."""
    r = latency_rollups
    totals = select(r.c.version_id, func.sum(r.c.count).label("count"), func.sum(r.c.errors).label("errors"),
                    func.sum(r.c.row_count).label("rows"), func.min(r.c.minute).label("first_minute"),
                    func.max(r.c.minute).label("last_minute"))
    if source is not None:
        totals = totals.where(r.c.source == source)
    totals = totals.group_by(r.c.version_id).subquery()
    recent = select(r.c.version_id, r.c.count, r.c.errors, r.c.latency_sum_ms, r.c.histogram, r.c.row_count).join(
        totals, and_(r.c.version_id == totals.c.version_id,
                     r.c.minute > totals.c.last_minute - math.ceil(p95_days * 1440)))
    if source is not None:
        recent = recent.where(r.c.source == source)
    with store.read() as conn:
        summed = conn.execute(select(totals)).all()
        windowed = conn.execute(recent).all()
    index = {row.version_id: i for i, row in enumerate(summed)}
    p95 = summary_frame(aggregate_rollups(windowed, [index[w.version_id] for w in windowed], len(summed)))["p95_ms"]
    count = np.array([int(row.count) for row in summed], dtype=np.int64)
    errors = np.array([int(row.errors) for row in summed], dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame = pd.DataFrame({
            "version_id": [row.version_id for row in summed],
            "count": count,
            "errors": errors,
            "error_rate": np.where(count > 0, errors / np.maximum(count, 1), np.nan),
            "p95_ms": p95.to_numpy(),
            "first_at": [float(row.first_minute * 60) for row in summed],
            "last_at": [float(row.last_minute * 60 + 60) for row in summed],
            "rows": np.array([int(row.rows) for row in summed], dtype=np.int64),
        }, columns=_SUMMARY_COLUMNS)
    return frame.sort_values("first_at", ignore_index=True)


def refusal_series(store: Store, start: float, end: float, *, version_id: str | None = None,
                   source: str | None = None, step_seconds: int = 60) -> pd.DataFrame:
    """Requests refused before any prediction, per step and reason (columns bucket_start, reason, count)."""
    if step_seconds < 60 or step_seconds % 60:
        raise BadInputError(f"step must be a whole number of minutes, not {step_seconds} s")
    step = step_seconds // 60
    query = (select(refusals.c.minute, refusals.c.reason, func.sum(refusals.c.count).label("count"))
             .where(refusals.c.minute >= math.floor(start / 60), refusals.c.minute < math.ceil(end / 60))
             .group_by(refusals.c.minute, refusals.c.reason))
    if version_id is not None:
        query = query.where(refusals.c.version_id == version_id)
    if source is not None:
        query = query.where(refusals.c.source == source)
    with store.read() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([(r.minute // step * step_seconds, r.reason, int(r.count)) for r in rows],
                         columns=["bucket_start", "reason", "count"])
    return (frame.groupby(["bucket_start", "reason"], as_index=False)["count"].sum()
            .sort_values(["bucket_start", "reason"], ignore_index=True))


# -- raw-row views ------------------------------------------------------------------------------
def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def live_window(store: Store, n: int, *, source: str | None = None) -> dict[str, Any]:
    """The last ``n`` logged rows (of ``source``): the requests among them (``requests``; those that
    opened there), their mean and p95 latency, requests and rows per second, failed-request rate, and
    rows per version (``count`` is the rows read)."""
    query = (select(predictions.c.at, predictions.c.latency_ms, predictions.c.status, predictions.c.version_id,
                    predictions.c.request_rows)
             .order_by(predictions.c.at.desc()).limit(max(0, int(n))))
    if source is not None:
        query = query.where(predictions.c.source == source)
    with store.read() as conn:
        rows = conn.execute(query).all()
    opened = [r for r in rows if r.request_rows]
    if not rows or not opened:
        return {"count": len(rows), "requests": 0, "avg_latency_ms": None, "p95_ms": None, "rate_per_s": None,
                "rows_per_s": None, "error_rate": None, "versions": {}}
    latencies = np.fromiter((r.latency_ms for r in opened), float, len(opened))
    span = rows[0].at - rows[-1].at
    request_span = opened[0].at - opened[-1].at
    versions: dict[str, int] = {}
    for r in rows:
        versions[r.version_id] = versions.get(r.version_id, 0) + 1
    return {
        "count": len(rows),
        "requests": len(opened),
        "avg_latency_ms": float(latencies.mean()),
        "p95_ms": float(np.percentile(latencies, 95)),
        "rate_per_s": (len(opened) - 1) / request_span if request_span > 0 else None,
        "rows_per_s": (len(rows) - 1) / span if span > 0 else None,
        "error_rate": sum(r.status != "ok" for r in opened) / len(opened),
        "versions": versions,
    }


_RECENT_COLUMNS = ["id", "at", "request_id", "version_id", "source", "latency_ms", "status", "prediction",
                   "probability", "label"]


def recent_predictions(store: Store, limit: int = 50, *, since_id: int | None = None,
                       source: str | None = None) -> pd.DataFrame:
    """The newest logged predictions (of ``source``) first; ``since_id`` keeps only rows newer than one
    already shown."""
    query = select(*(predictions.c[name] for name in _RECENT_COLUMNS)).limit(limit)
    if source is None:
        query = query.order_by(predictions.c.id.desc())
    else:
        # Newest by time within the source: the (source, at) index answers it without a scan.
        query = query.where(predictions.c.source == source).order_by(predictions.c.at.desc(), predictions.c.id.desc())
    if since_id is not None:
        query = query.where(predictions.c.id > since_id)
    with store.read() as conn:
        rows = conn.execute(query).all()
    decoded = [(*r[:7], _loads(r.prediction), r.probability, _loads(r.label)) for r in rows]
    return pd.DataFrame(decoded, columns=_RECENT_COLUMNS)


def answered_rows(store: Store, version_id: str, bounds: Sequence[float]) -> list[int]:
    """Rows answered (not failed) of ``version_id`` per window [bounds[i], bounds[i+1]), all sources.

    From the per-minute latency rollups, so it costs the same at any traffic; a minute counts in the
    window its start falls in, so bounds on whole minutes count exactly the rows logged in between.
    """
    table = latency_rollups
    query = (select(table.c.minute, func.sum(table.c.row_count - table.c.row_errors))
             .where(table.c.version_id == version_id, table.c.minute * 60 >= bounds[0],
                    table.c.minute * 60 < bounds[-1])
             .group_by(table.c.minute))
    counts = [0] * (len(bounds) - 1)
    edges = np.asarray(bounds, dtype=float)
    with store.read() as conn:
        for minute, rows in conn.execute(query):
            counts[int(np.searchsorted(edges, minute * 60, side="right")) - 1] += int(rows or 0)
    return counts
