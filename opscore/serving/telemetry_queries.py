"""Reading telemetry back: latency and traffic over any window from the rollups, and raw-row views.

Percentile charts read the per-minute rollups, so "p95 per minute over the last day" costs the
same at a thousand predictions or a million; ``exact_percentiles`` reads the raw rows when the exact
figure matters more than the cost.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from opscore.exceptions import BadInputError
from opscore.serving.latency_histogram import (
    QUANTILES,
    aggregate_rollups,
    quantiles_from_counts,
    summary_frame,
)
from opscore.store import Store, latency_rollups, predictions


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
    frame = summary_frame(aggregate_rollups(rows, group_of, len(keys)))
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
    agg = aggregate_rollups(rows, [0] * len(rows), 1)
    count = int(agg["count"][0])
    if count == 0:
        return _window_dict(0, 0, None, None)
    values = tuple(float(v) for v in quantiles_from_counts(agg["histograms"])[0])
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
    frame = summary_frame(aggregate_rollups(rows, group_of, len(versions)))
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
